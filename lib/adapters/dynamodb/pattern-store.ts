/**
 * Per-protocol aggregates in DynamoDB (PATTERNS_TABLE), one per protocol per UTC day, merged
 * on read for a window of N days. Both analysis paths write the same items: the SQS path
 * merges each batch into the day buckets of its executions' `finishedAt`, the batch path adds
 * what the stream missed and, once a day has settled, replaces a bucket that disagrees with
 * the history.
 *
 *   pk `<tenant>#<document>#<protocol>` (URI-encoded parts), sk `agg#day#<YYYY-MM-DD>#v<version>`
 *   a day bucket of one document version (sk `agg#day#<YYYY-MM-DD>`: a bucket written before
 *   versions were counted, every version's)
 *      agg  (B) gzipped AggregateJson;  version (N) bumped on each write (optimistic concurrency);
 *      executions (N);  updatedAt (S);  streamMergedAt (N, epoch ms of the last SQS-path merge);
 *      writes (L) the last WRITE_TOKENS_KEPT write tokens (to settle an ambiguous write);  ttl
 *   same pk, sk `seen#<executionId>`                                                   a marker
 *      at (N, epoch ms), by (S: `stream` or `batch:<runId>`), day (S), ttl
 *   pk `tenant#<tenant>`, sk `protocol#<document>#<protocol>`                          the tenant's protocols
 *
 * Counting an execution exactly once without transactions (dynalite has no
 * TransactWriteItems): whoever counts an execution first claims its marker with a
 * conditional put, and only then merges it into a bucket. A second claim fails, so a
 * redelivered message is never counted twice. If the merge then fails, the claim is
 * released so that the redelivery counts it; a crash between claim and merge leaves the
 * execution uncounted (never double counted) until the batch analysis repairs the day.
 */
import type { ClaimResult, DayBucketKey, ExecutionMarker, PatternStore, StoredBucket } from "../../ports.ts";
import { randomUUID } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  type AttributeValue,
  BatchGetItemCommand,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  type AggregateKey,
  type ProtocolAggregate,
  aggregateFromJSON,
  aggregateToJSON,
  createAggregate,
  mergeInto,
} from "../../analysis/aggregate.ts";
import { guardDynamo, isConditionFailed, keyPart, queryItems } from "./errors.ts";
import { MovaError } from "../../errors.ts";

interface DynamoPatternStoreOptions {
  client: DynamoDBClient;
  table: string;
  /** Buckets and markers expire (DynamoDB TTL) this long after their day. Default 400. */
  retentionDays?: number;
  /** Tries of a merge on version conflicts. Default 8. */
  maxMergeAttempts?: number;
  /** Epoch ms; `Date.now` by default. */
  now?: () => number;
}

const UNAVAILABLE = "patterns_unavailable";
const WRITE_TOKENS_KEPT = 32;
/** Below DynamoDB's 400 KB item limit with room for the other attributes. */
const MAX_AGGREGATE_BYTES = 350_000;
const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

const protocolPk = (key: AggregateKey) =>
  `${keyPart(key.tenant)}#${keyPart(key.document)}#${keyPart(key.protocol)}`;
const bucketSk = (day: string, version?: number) =>
  version === undefined ? `agg#day#${day}` : `agg#day#${day}#v${String(version).padStart(10, "0")}`;
/** Above every bucket sk of the day (`#` < `~`), below the next day's. */
const dayEndSk = (day: string) => `agg#day#${day}~`;
const markerSk = (executionId: string) => `seen#${keyPart(executionId)}`;
const tenantPk = (tenant: string) => `tenant#${keyPart(tenant)}`;
const protocolSk = (key: AggregateKey) => `protocol#${keyPart(key.document)}#${keyPart(key.protocol)}`;

/** The UTC day of an ISO time, as the history's byDay index keys it (`now` when unreadable). */
export function encodeAggregate(aggregate: ProtocolAggregate): Uint8Array {
  const bytes = gzipSync(Buffer.from(JSON.stringify(aggregateToJSON(aggregate)), "utf8"));
  if (bytes.byteLength > MAX_AGGREGATE_BYTES) {
    throw new MovaError(
      "aggregate_too_large",
      `the aggregate of ${aggregate.tenant}/${aggregate.document}/${aggregate.protocol} is ${bytes.byteLength} bytes gzipped`,
    );
  }
  return bytes;
}

export function decodeAggregate(bytes: Uint8Array): ProtocolAggregate {
  return aggregateFromJSON(JSON.parse(gunzipSync(bytes).toString("utf8")));
}

export function createDynamoPatternStore(options: DynamoPatternStoreOptions): PatternStore {
  const { client, table } = options;
  const now = options.now ?? Date.now;
  const retentionSeconds = (options.retentionDays ?? 400) * 86_400;
  const maxAttempts = options.maxMergeAttempts ?? 8;
  const ttlOf = (day: string) => String(Math.floor(Date.parse(`${day}T00:00:00Z`) / 1000) + retentionSeconds);
  const send = <T>(call: () => Promise<T>) => guardDynamo(UNAVAILABLE, call);

  async function readBucket(key: DayBucketKey): Promise<StoredBucket | undefined> {
    const result = await send(() =>
      client.send(
        new GetItemCommand({
          TableName: table,
          Key: { pk: { S: protocolPk(key) }, sk: { S: bucketSk(key.day, key.version) } },
          ConsistentRead: true,
        }),
      ),
    );
    return result.Item ? bucketFromItem(key, result.Item) : undefined;
  }

  function bucketItem(
    key: DayBucketKey,
    aggregate: ProtocolAggregate,
    version: number,
    writes: string[],
    streamMergedAt: number | undefined,
  ): Record<string, AttributeValue> {
    return {
      pk: { S: protocolPk(key) },
      sk: { S: bucketSk(key.day, key.version) },
      tenant: { S: key.tenant },
      document: { S: key.document },
      protocol: { S: key.protocol },
      day: { S: key.day },
      agg: { B: encodeAggregate(aggregate) },
      executions: { N: String(aggregate.executions) },
      version: { N: String(version) },
      updatedAt: { S: new Date(now()).toISOString() },
      ...(streamMergedAt !== undefined ? { streamMergedAt: { N: String(streamMergedAt) } } : {}),
      writes: { L: writes.map((token) => ({ S: token })) },
      ttl: { N: ttlOf(key.day) },
    };
  }

  /** A conditional put on the version; true when written, false on a conflict. */
  async function putBucket(
    key: DayBucketKey,
    item: Record<string, AttributeValue>,
    expectedVersion: number,
    token: string,
  ): Promise<boolean> {
    try {
      await send(() =>
        client.send(
          new PutItemCommand({
            TableName: table,
            Item: item,
            ...(expectedVersion === 0
              ? { ConditionExpression: "attribute_not_exists(pk)" }
              : {
                  ConditionExpression: "version = :expected",
                  ExpressionAttributeValues: { ":expected": { N: String(expectedVersion) } },
                }),
          }),
        ),
      );
    } catch (error) {
      if (isConditionFailed(error)) return false;
      // The write may have landed with its answer lost: the token says whether it did.
      const stored = await readBucketItem(key).catch(() => undefined);
      if (stored?.writes?.L?.some((value) => value.S === token)) return true;
      throw error;
    }
    if (expectedVersion === 0) await registerProtocol(key);
    return true;
  }

  async function readBucketItem(key: DayBucketKey) {
    const result = await client.send(
      new GetItemCommand({
        TableName: table,
        Key: { pk: { S: protocolPk(key) }, sk: { S: bucketSk(key.day, key.version) } },
        ConsistentRead: true,
      }),
    );
    return result.Item;
  }

  async function registerProtocol(key: AggregateKey): Promise<void> {
    await send(() =>
      client.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            pk: { S: tenantPk(key.tenant) },
            sk: { S: protocolSk(key) },
            tenant: { S: key.tenant },
            document: { S: key.document },
            protocol: { S: key.protocol },
          },
        }),
      ),
    );
  }

  /** The day buckets of `key` from `fromDay` to `toDay` (every version's), with their day. */
  async function* bucketsIn(
    key: { tenant: string; document: string; protocol: string },
    fromDay: string,
    toDay: string,
  ): AsyncGenerator<{ day: string; aggregate: ProtocolAggregate }> {
    if (!DAY_PATTERN.test(fromDay) || !DAY_PATTERN.test(toDay)) {
      throw new RangeError(`days must be YYYY-MM-DD: ${fromDay}, ${toDay}`);
    }
    for await (const item of queryItems(client, UNAVAILABLE, {
      TableName: table,
      KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
      ExpressionAttributeValues: {
        ":pk": { S: protocolPk(key) },
        ":from": { S: bucketSk(fromDay) },
        ":to": { S: dayEndSk(toDay) },
      },
      ProjectionExpression: "agg, sk",
    })) {
      if (!item.agg?.B) continue;
      const day = (item.sk?.S ?? "").slice("agg#day#".length, "agg#day#".length + 10);
      yield { day, aggregate: decodeAggregate(item.agg.B) };
    }
  }

  return {
    async claimExecutions(key, executions, by) {
      const claimed: string[] = [];
      const duplicates: string[] = [];
      const failed: ClaimResult["failed"] = [];
      const at = now();
      await Promise.all(
        executions.map(async ({ executionId, day }) => {
          try {
            await send(() =>
              client.send(
                new PutItemCommand({
                  TableName: table,
                  Item: {
                    pk: { S: protocolPk(key) },
                    sk: { S: markerSk(executionId) },
                    at: { N: String(at) },
                    by: { S: by },
                    day: { S: day },
                    ttl: { N: ttlOf(day) },
                  },
                  ConditionExpression: "attribute_not_exists(pk)",
                }),
              ),
            );
            claimed.push(executionId);
          } catch (error) {
            if (isConditionFailed(error)) duplicates.push(executionId);
            else failed.push({ executionId, error });
          }
        }),
      );
      return { claimed, duplicates, failed };
    },

    async releaseClaims(key, executionIds) {
      await Promise.all(
        executionIds.map((executionId) =>
          send(() =>
            client.send(
              new DeleteItemCommand({
                TableName: table,
                Key: { pk: { S: protocolPk(key) }, sk: { S: markerSk(executionId) } },
              }),
            ),
          ),
        ),
      );
    },

    async readMarkers(key, executionIds) {
      const found = new Map<string, ExecutionMarker>();
      const unique = [...new Set(executionIds)];
      for (let start = 0; start < unique.length; start += 100) {
        let keys: Array<Record<string, AttributeValue>> | undefined = unique
          .slice(start, start + 100)
          .map((executionId) => ({ pk: { S: protocolPk(key) }, sk: { S: markerSk(executionId) } }));
        for (let round = 0; keys && keys.length > 0; round++) {
          if (round > 0) await sleep(Math.min(1_000, 50 * 2 ** round));
          const result = await send(() =>
            client.send(
              new BatchGetItemCommand({
                RequestItems: { [table]: { Keys: keys, ConsistentRead: true } },
              }),
            ),
          );
          for (const item of result.Responses?.[table] ?? []) {
            const executionId = decodeURIComponent((item.sk?.S ?? "").slice("seen#".length));
            found.set(executionId, {
              executionId,
              at: Number(item.at?.N ?? 0),
              by: item.by?.S ?? "",
            });
          }
          keys = result.UnprocessedKeys?.[table]?.Keys;
        }
      }
      return found;
    },

    async mergeIntoBucket(key, delta, source) {
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        const current = await readBucket(key);
        // The bucket just read is this attempt's own: the delta is added to it in place.
        const next = current ? mergeInto(current.aggregate, delta) : mergeInto(createAggregate(delta), delta);
        const version = (current?.version ?? 0) + 1;
        const token = randomUUID();
        const writes = [...(current?.writeTokens ?? []), token].slice(-WRITE_TOKENS_KEPT);
        const streamMergedAt = source === "stream" ? now() : current?.streamMergedAt;
        const item = bucketItem(key, next, version, writes, streamMergedAt);
        if (await putBucket(key, item, current?.version ?? 0, token)) return { version };
        // Someone wrote between our read and our write: back off with jitter and merge again.
        await sleep(Math.random() * Math.min(1_000, 20 * 2 ** attempt));
      }
      throw new MovaError(
        "merge_conflict",
        `the bucket ${protocolPk(key)} ${key.day} kept changing under ${maxAttempts} merges`,
      );
    },

    readBucket,

    async replaceBucket(key, aggregate, expectedVersion) {
      const current = expectedVersion === 0 ? undefined : await readBucket(key);
      if (expectedVersion !== 0 && current?.version !== expectedVersion) return false;
      const token = randomUUID();
      const writes = [...(current?.writeTokens ?? []), token].slice(-WRITE_TOKENS_KEPT);
      const item = bucketItem(key, aggregate, expectedVersion + 1, writes, current?.streamMergedAt);
      return putBucket(key, item, expectedVersion, token);
    },

    async readWindow(key, fromDay, toDay) {
      // Every version's buckets are read: the answer holds each version's merge and theirs.
      const all = createAggregate({ tenant: key.tenant, document: key.document, protocol: key.protocol });
      const versions = new Map<number, ProtocolAggregate>();
      const days = new Set<string>();
      const versionDays = new Set<string>();
      for await (const { day, aggregate: bucket } of bucketsIn(key, fromDay, toDay)) {
        mergeInto(all, bucket);
        days.add(day);
        if (bucket.version === undefined) continue;
        let version = versions.get(bucket.version);
        if (!version) {
          version = createAggregate(bucket);
          versions.set(bucket.version, version);
        }
        mergeInto(version, bucket);
        if (bucket.version === key.version) versionDays.add(day);
      }
      const byVersion = [...versions.values()].sort((a, b) => (a.version ?? 0) - (b.version ?? 0));
      if (key.version !== undefined) {
        const chosen = versions.get(key.version);
        return chosen === undefined
          ? undefined
          : { aggregate: chosen, days: versionDays.size, versions: byVersion };
      }
      return days.size === 0 ? undefined : { aggregate: all, days: days.size, versions: byVersion };
    },

    async readBuckets(key, fromDay, toDay) {
      const out: Array<{ day: string; aggregate: ProtocolAggregate }> = [];
      for await (const bucket of bucketsIn(key, fromDay, toDay)) out.push(bucket);
      return out;
    },

    async listProtocols(tenant, limit = 200) {
      const out: AggregateKey[] = [];
      for await (const item of queryItems(client, UNAVAILABLE, {
        TableName: table,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: { ":pk": { S: tenantPk(tenant) }, ":prefix": { S: "protocol#" } },
        Limit: Math.min(100, limit),
      })) {
        out.push({ tenant, document: item.document?.S ?? "", protocol: item.protocol?.S ?? "" });
        // No page past the limit is read.
        if (out.length >= limit) break;
      }
      return out;
    },
  };
}

function bucketFromItem(key: DayBucketKey, item: Record<string, AttributeValue>): StoredBucket {
  const bytes = item.agg?.B;
  const aggregate = bytes ? decodeAggregate(bytes) : createAggregate(key);
  const streamMergedAt = item.streamMergedAt?.N;
  return {
    key,
    aggregate,
    version: Number(item.version?.N ?? 0),
    updatedAt: item.updatedAt?.S ?? "",
    writeTokens: (item.writes?.L ?? []).flatMap((value) => (value.S ? [value.S] : [])),
    ...(streamMergedAt !== undefined ? { streamMergedAt: Number(streamMergedAt) } : {}),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
