/**
 * Idempotency for retried requests: the first request with a key claims it (a conditional
 * put), runs, and stores its response; a retry with the same key and body gets that response
 * without running again. Records live in the executions table under `idem#<tenant>#<key>`.
 */
import { StoreUnavailableError } from "../errors.ts";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";

export interface StoredResponse {
  status: number;
  body: unknown;
}

export type IdempotencyClaim =
  | { state: "claimed" }
  | { state: "in_progress"; sameRequest: boolean }
  | { state: "completed"; sameRequest: boolean; response: StoredResponse };

export interface IdempotencyStore {
  /**
   * Claims `key` for a request whose body hashes to `fingerprint`. A claim whose holder
   * died (its lock older than `lockMs`) can be taken over.
   */
  claim(tenant: string, key: string, fingerprint: string, lockMs: number): Promise<IdempotencyClaim>;
  complete(tenant: string, key: string, fingerprint: string, response: StoredResponse): Promise<void>;
  /** Gives the key back (the request failed before it changed anything), so a retry runs. */
  release(tenant: string, key: string, fingerprint: string): Promise<void>;
}

export interface DynamoIdempotencyOptions {
  client: DynamoDBClient;
  tableName: string;
  /** How long a completed response is replayed. */
  retentionSeconds?: number;
  now?: () => number;
}

const SORT_KEY = "idempotency";
/** DynamoDB items are capped at 400 KB; keep well below with the other attributes. */
const MAX_STORED_BYTES = 350_000;

export function createDynamoIdempotencyStore(options: DynamoIdempotencyOptions): IdempotencyStore {
  const { client, tableName } = options;
  const retentionSeconds = options.retentionSeconds ?? 24 * 3600;
  const now = options.now ?? Date.now;
  const key = (tenant: string, idempotencyKey: string) => ({
    pk: { S: `idem#${tenant}#${idempotencyKey}` },
    sk: { S: SORT_KEY },
  });

  async function guarded<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw error;
      throw new StoreUnavailableError("history_unavailable", `idempotency ${what} failed`, { cause: error });
    }
  }

  return {
    async claim(tenant, idempotencyKey, fingerprint, lockMs) {
      const at = now();
      try {
        await guarded("claim", () =>
          client.send(
            new PutItemCommand({
              TableName: tableName,
              Item: {
                ...key(tenant, idempotencyKey),
                state: { S: "in_progress" },
                fingerprint: { S: fingerprint },
                lockExpiresAt: { N: String(at + lockMs) },
                ttl: { N: String(Math.floor(at / 1000) + retentionSeconds) },
              },
              ConditionExpression:
                "attribute_not_exists(pk) OR (#state = :progress AND lockExpiresAt < :now)",
              ExpressionAttributeNames: { "#state": "state" },
              ExpressionAttributeValues: { ":progress": { S: "in_progress" }, ":now": { N: String(at) } },
            }),
          ),
        );
        return { state: "claimed" };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
      const existing = await guarded("read", () =>
        client.send(
          new GetItemCommand({
            TableName: tableName,
            Key: key(tenant, idempotencyKey),
            ConsistentRead: true,
          }),
        ),
      );
      const item = existing.Item;
      // Released between our put and our read: the caller may simply retry.
      if (!item) return { state: "in_progress", sameRequest: true };
      const sameRequest = item.fingerprint?.S === fingerprint;
      if (item.state?.S === "completed" && item.response?.B) {
        const response = JSON.parse(gunzipSync(item.response.B).toString("utf8")) as StoredResponse;
        return { state: "completed", sameRequest, response };
      }
      return { state: "in_progress", sameRequest };
    },

    async complete(tenant, idempotencyKey, fingerprint, response) {
      let packed = gzipSync(JSON.stringify(response));
      if (packed.byteLength > MAX_STORED_BYTES) {
        const body = response.body as { executionId?: unknown; status?: unknown } | undefined;
        packed = gzipSync(
          JSON.stringify({
            status: response.status,
            body: { executionId: body?.executionId, status: body?.status, truncated: true },
          }),
        );
      }
      await guarded("write", () =>
        client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: key(tenant, idempotencyKey),
            UpdateExpression: "SET #state = :completed, #response = :response REMOVE lockExpiresAt",
            ConditionExpression: "fingerprint = :fingerprint",
            ExpressionAttributeNames: { "#state": "state", "#response": "response" },
            ExpressionAttributeValues: {
              ":completed": { S: "completed" },
              ":response": { B: packed },
              ":fingerprint": { S: fingerprint },
            },
          }),
        ),
      );
    },

    async release(tenant, idempotencyKey, fingerprint) {
      try {
        await guarded("release", () =>
          client.send(
            new DeleteItemCommand({
              TableName: tableName,
              Key: key(tenant, idempotencyKey),
              ConditionExpression: "#state = :progress AND fingerprint = :fingerprint",
              ExpressionAttributeNames: { "#state": "state" },
              ExpressionAttributeValues: {
                ":progress": { S: "in_progress" },
                ":fingerprint": { S: fingerprint },
              },
            }),
          ),
        );
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    },
  };
}
