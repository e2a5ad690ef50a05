/**
 * Idempotency for retried requests, for every caller that has a key: the API's
 * `Idempotency-Key` on POST /executions and the trigger's `idempotencyKey` on run requests.
 * Powertools for AWS Lambda's idempotency utility does the work (makeIdempotent with its
 * DynamoDB persistence layer): the first request with a key claims it (a conditional put of
 * an INPROGRESS record), runs, and stores its response; a retry with the same key and request
 * gets that response without running again; a run that throws deletes its claim, so a retry
 * runs.
 *
 * Records live in the executions table (pk/sk), through Powertools' composite-key mode:
 *
 *   pk      `idem#<tenant>`                      (Powertools' staticPkValue, one per tenant)
 *   sk      `<scope>#<sha256 of [tenant, key]>`   (scope `api` or `trigger`: their keys never meet)
 *   status  INPROGRESS | COMPLETED; `in_progress_expiration` (epoch ms) ends a dead holder's claim
 *   validation  sha256 of the request: the same key with another request is rejected
 *   data    the stored response; `ttl` (epoch s) ends the replay and lets DynamoDB delete the item
 *
 * Tenants are in the partition key (and in the hashed key), so two tenants' keys never collide,
 * and the IAM condition on `idem#*` keeps the functions' DeleteItem to these records.
 */
import type { Idempotency, IdempotencyScope, IdempotentResponse } from "../../ports.ts";
import { gunzipSync, gzipSync } from "node:zlib";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  IdempotencyInconsistentStateError,
  IdempotencyItemNotFoundError,
  IdempotencyValidationError,
  makeIdempotent,
} from "@aws-lambda-powertools/idempotency";
import { DynamoDBPersistenceLayer } from "@aws-lambda-powertools/idempotency/dynamodb";
import type { Context } from "aws-lambda";
import { keyPart } from "./errors.ts";
import { canonicalJson, sha256Hex } from "./canonical-json.ts";
import { MovaError, StoreUnavailableError } from "../../errors.ts";

interface DynamoIdempotencyOptions {
  client: DynamoDBClient;
  tableName: string;
  /**
   * How long a claim holds while its run is in progress (ms): a holder that died leaves a
   * claim that another request takes over after this. The run deadline plus a margin.
   */
  lockMs: number;
  /** How long a completed response is replayed (s). */
  retentionSeconds?: number;
}

/** DynamoDB items are capped at 400 KB; keep the stored response well below with the other attributes. */
export const MAX_STORED_BYTES = 350_000;

/** The response as stored: its JSON, gzipped (base64) when the JSON alone is too large. */
type StoredResponse = { status: number; json: string } | { status: number; gzip: string };

export function createDynamoIdempotency(options: DynamoIdempotencyOptions): Idempotency {
  const { client, tableName, lockMs } = options;
  const config = new IdempotencyConfig({
    eventKeyJmesPath: "[tenant, key]",
    payloadValidationJmesPath: "request",
    throwOnNoIdempotencyKey: true,
    expiresAfterSeconds: options.retentionSeconds ?? 24 * 3600,
    hashFunction: "sha256",
    // Powertools sets a claim's in-progress expiry from the Lambda context's remaining time.
    // Our runs end at their own deadline, not the invocation's, so the "remaining time" it
    // reads is the lock: the run deadline plus a margin, in the API, the trigger and locally.
    lambdaContext: { getRemainingTimeInMillis: () => lockMs } as Pick<
      Context,
      "getRemainingTimeInMillis"
    > as Context,
  });

  return {
    async run({ scope, tenant, key, request }, work, logger) {
      // A persistence layer per call: its partition key is the tenant's, and Powertools keeps
      // per-call settings (the key prefix) on the layer, so sharing one between concurrent
      // calls of different scopes would mix them. It is a few plain objects; the client is shared.
      const persistenceStore = new DynamoDBPersistenceLayer({
        tableName,
        awsSdkV3Client: client,
        keyAttr: "pk",
        sortKeyAttr: "sk",
        staticPkValue: `idem#${keyPart(tenant)}`,
        expiryAttr: "ttl",
      });
      // What the run did, seen from here: Powertools turns some of its outcomes into its own
      // errors (a failed release or completion), and the caller must get the run's.
      let ran: { response: IdempotentResponse } | undefined;
      let failed: { error: unknown } | undefined;
      const idempotent = makeIdempotent(
        async (_claim: { tenant: string; key: string; request: unknown }): Promise<StoredResponse> => {
          let response: IdempotentResponse;
          try {
            response = await work();
          } catch (error) {
            failed = { error };
            throw error;
          }
          ran = { response };
          return packResponse(response);
        },
        { persistenceStore, config, keyPrefix: scope },
      );

      // Powertools hashes the validated payload with recursive code that a deeply nested
      // request overflows after the claim is written, leaving it "in progress" until its lock
      // expires: it is given the request's hash instead (key order does not matter).
      let requestHash: string;
      try {
        requestHash = sha256Hex(canonicalJson(request));
      } catch {
        throw new MovaError("input_too_deep", "the request is nested too deeply to be claimed");
      }
      let stored: StoredResponse;
      try {
        stored = await idempotent({ tenant, key, request: requestHash });
      } catch (error) {
        if (failed) {
          // Powertools could not delete the claim: it holds until its lock expires.
          if (error !== failed.error) {
            logger.warn("idempotency release failed", { error: String(causeOf(error)) });
          }
          throw failed.error;
        }
        if (ran) {
          // The run happened and is recorded: answer it. A retry meets the claim (409) while
          // its lock holds, and after it runs again: the lesser evil to a lost response.
          logger.warn("idempotency completion not stored", { error: String(causeOf(error)) });
          return { replayed: false, response: ran.response };
        }
        throw conflictOrUnavailable(error, scope);
      }
      if (ran) return { replayed: false, response: ran.response };
      return { replayed: true, response: unpackResponse(stored) };
    },
  };
}

function conflictOrUnavailable(error: unknown, scope: IdempotencyScope): Error {
  if (error instanceof IdempotencyValidationError) {
    // Never retryable: the same key will always carry the other request.
    return new MovaError("idempotency_key_reused", "this idempotency key was used with a different request");
  }
  // In progress; or the claim changed between the put and the read (released, expired): a
  // retry will see where it stands.
  if (
    error instanceof IdempotencyAlreadyInProgressError ||
    error instanceof IdempotencyInconsistentStateError ||
    error instanceof IdempotencyItemNotFoundError
  ) {
    // Retryable: a later try finds the first request done (or its claim expired).
    return new MovaError(
      "idempotency_in_progress",
      "a request with this idempotency key is still in progress",
      {
        retryable: true,
      },
    );
  }
  const reason = causeOf(error);
  return new StoreUnavailableError(
    "history_unavailable",
    `idempotency claim (${scope}) failed: ${reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason)}`,
    { cause: error },
  );
}

/** Powertools wraps the DynamoDB error in IdempotencyPersistenceLayerError; the cause says what happened. */
function causeOf(error: unknown): unknown {
  return error instanceof Error && error.cause !== undefined ? error.cause : error;
}

/**
 * A response whose JSON is too large for the item is stored gzipped; one too large even so
 * keeps what identifies the run (its execution id and status, `truncated: true`), so a retry
 * still learns what ran without breaking the request that stored it.
 */
function packResponse({ status, body }: IdempotentResponse): StoredResponse {
  const json = JSON.stringify(body ?? null);
  if (Buffer.byteLength(json) <= MAX_STORED_BYTES) return { status, json };
  const gzip = gzipSync(json).toString("base64");
  if (gzip.length <= MAX_STORED_BYTES) return { status, gzip };
  const { executionId, status: runStatus } = (body ?? {}) as { executionId?: unknown; status?: unknown };
  return { status, json: JSON.stringify({ executionId, status: runStatus, truncated: true }) };
}

function unpackResponse(stored: StoredResponse): IdempotentResponse {
  const json =
    "gzip" in stored ? gunzipSync(Buffer.from(stored.gzip, "base64")).toString("utf8") : stored.json;
  return { status: stored.status, body: JSON.parse(json) };
}
