/**
 * Execution history in DynamoDB (EXECUTIONS_TABLE). One item per execution:
 *
 *   pk `exec#<tenant>#<executionId>`, sk `exec`
 *   record   the ExecutionRecord as JSON text (step outputs capped at outputMaxBytes)
 *   tenant, document, protocol, executionId, status, finishedAt, analysis   plain attributes
 *   gsi1pk `<tenant>#<document>#<protocol>`, gsi1sk `<finishedAt>#<executionId>`  (index byProtocolTime)
 *   gsi2pk `<YYYY-MM-DD of finishedAt>`,      gsi2sk `<finishedAt>#<executionId>`  (index byDay)
 *   ttl      epoch seconds: finishedAt + retentionDays
 *
 * Key parts are URI-encoded (a `#` in a name cannot make two keys meet) and every query
 * also filters on the exact tenant/document/protocol attributes. `analysis` lives in its own
 * attribute (the batch analysis flips it without rewriting the record) and wins on read.
 * The idempotency records (lib/services/idempotency.ts) share the table under pk `idem#…`,
 * so nothing here collides.
 */
import { MovaError } from "../../errors.ts";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { type ExecutionRecord, ExecutionRecordSchema } from "../../core/execution-record.ts";
import { guardDynamo, isConditionFailed, keyPart } from "./errors.ts";
import type { ExecutionPage, ExecutionQuery, HistoryStore } from "../../core/ports.ts";
import { capStepOutputs, shrinkRecord, utf8Bytes } from "../../core/record-size.ts";

interface DynamoHistoryStoreOptions {
  client: DynamoDBClient;
  table: string;
  /** HISTORY_RETENTION_DAYS: items expire (DynamoDB TTL) this long after they finished. */
  retentionDays: number;
  /** HISTORY_OUTPUT_MAX_BYTES: a step output's JSON above this is cut and marked. */
  outputMaxBytes: number;
  /** Epoch ms; `Date.now` by default. */
  now?: () => number;
}

interface PageQuery {
  cursor?: string;
  /** 1..100, default 20. */
  limit?: number;
}

/** The history store plus the reads of the batch analysis (not on the HistoryStore port). */
export interface DynamoHistoryStore extends HistoryStore {
  /** Executions that finished on `day` (`YYYY-MM-DD`, UTC), across tenants, newest first. */
  queryByDay(day: string, query?: PageQuery): Promise<ExecutionPage>;
  /** Like queryByDay, only those whose event was never published (`analysis: "pending"`). */
  listPending(day: string, query?: PageQuery): Promise<ExecutionPage>;
}

const DEFAULT_PAGE_LIMIT = 20;
const MAX_PAGE_LIMIT = 100;
const UNAVAILABLE = "history_unavailable";
/** Below DynamoDB's 400 KB item limit, with room for the key and index attributes. */
const MAX_RECORD_BYTES = 350_000;
/** Pages read to fill one filtered page before answering with a shorter page and a cursor. */
const MAX_PAGES_PER_QUERY = 10;

const executionPk = (tenant: string, executionId: string) =>
  `exec#${keyPart(tenant)}#${keyPart(executionId)}`;
const EXECUTION_SK = "exec";
const protocolKey = (tenant: string, document: string, protocol: string) =>
  `${keyPart(tenant)}#${keyPart(document)}#${keyPart(protocol)}`;

interface IndexSpec {
  name: "byProtocolTime" | "byDay";
  pk: "gsi1pk" | "gsi2pk";
  sk: "gsi1sk" | "gsi2sk";
}
const BY_PROTOCOL_TIME: IndexSpec = { name: "byProtocolTime", pk: "gsi1pk", sk: "gsi1sk" };
const BY_DAY: IndexSpec = { name: "byDay", pk: "gsi2pk", sk: "gsi2sk" };

export function createDynamoHistoryStore(options: DynamoHistoryStoreOptions): DynamoHistoryStore {
  const { client, table } = options;
  const now = options.now ?? Date.now;

  function toItem(record: ExecutionRecord): Record<string, AttributeValue> {
    const finishedAt = isoOr(record.finishedAt, new Date(now()).toISOString());
    const sortKey = `${finishedAt}#${record.executionId}`;
    const ttl = Math.floor(Date.parse(finishedAt) / 1000) + options.retentionDays * 86_400;
    const stored = shrinkRecord(capStepOutputs(record, options.outputMaxBytes), MAX_RECORD_BYTES, (r) =>
      utf8Bytes(JSON.stringify(r)),
    );
    return {
      pk: { S: executionPk(record.tenant, record.executionId) },
      sk: { S: EXECUTION_SK },
      record: { S: JSON.stringify(stored) },
      tenant: { S: record.tenant },
      document: { S: record.document },
      protocol: { S: record.protocol },
      executionId: { S: record.executionId },
      status: { S: record.status },
      finishedAt: { S: finishedAt },
      analysis: { S: record.analysis },
      ttl: { N: String(ttl) },
      gsi1pk: { S: protocolKey(record.tenant, record.document, record.protocol) },
      gsi1sk: { S: sortKey },
      gsi2pk: { S: finishedAt.slice(0, 10) },
      gsi2sk: { S: sortKey },
    };
  }

  async function query(
    index: IndexSpec,
    partition: string,
    range: { from?: string; to?: string },
    filters: Record<string, string>,
    page: PageQuery,
  ): Promise<ExecutionPage> {
    const limit = pageLimit(page.limit);
    let startKey = page.cursor === undefined ? undefined : decodeCursor(page.cursor, index, partition);
    const cursorSk = startKey?.[index.sk]?.S;
    if (
      cursorSk !== undefined &&
      ((range.from !== undefined && cursorSk < range.from) ||
        (range.to !== undefined && cursorSk > `${range.to}#\uffff`))
    ) {
      throw new MovaError("invalid_cursor", "the cursor lies outside the requested time range");
    }
    const values: Record<string, AttributeValue> = { ":partition": { S: partition } };
    const names: Record<string, string> = { "#pk": index.pk };
    if (range.from !== undefined || range.to !== undefined) names["#sk"] = index.sk;
    let keyCondition = "#pk = :partition";
    if (range.from !== undefined && range.to !== undefined) {
      keyCondition += " AND #sk BETWEEN :from AND :to";
    } else if (range.from !== undefined) {
      keyCondition += " AND #sk >= :from";
    } else if (range.to !== undefined) {
      keyCondition += " AND #sk <= :to";
    }
    if (range.from !== undefined) values[":from"] = { S: range.from };
    // Inclusive: every `<to>#<executionId>` sorts below `<to>#\uffff`.
    if (range.to !== undefined) values[":to"] = { S: `${range.to}#\uffff` };
    const filterParts = Object.entries(filters).map(([attribute, value], i) => {
      names[`#f${i}`] = attribute;
      values[`:f${i}`] = { S: value };
      return `#f${i} = :f${i}`;
    });

    const items: ExecutionRecord[] = [];
    let cursorKey: Record<string, AttributeValue> | undefined;
    for (let round = 0; round < MAX_PAGES_PER_QUERY; round++) {
      const result = await guardDynamo(UNAVAILABLE, () =>
        client.send(
          new QueryCommand({
            TableName: table,
            IndexName: index.name,
            KeyConditionExpression: keyCondition,
            ...(filterParts.length > 0 ? { FilterExpression: filterParts.join(" AND ") } : {}),
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ScanIndexForward: false,
            Limit: limit,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      const found = result.Items ?? [];
      let taken = 0;
      for (const item of found) {
        if (items.length === limit) break;
        items.push(fromItem(item));
        taken++;
      }
      if (items.length === limit && taken < found.length) {
        // The page filled inside this batch: resume right after the last item returned.
        const last = found[taken - 1]!;
        cursorKey = keyOf(last, index);
        break;
      }
      cursorKey = result.LastEvaluatedKey;
      if (!cursorKey || items.length === limit) break;
      startKey = cursorKey;
    }
    return cursorKey ? { items, cursor: encodeCursor(cursorKey) } : { items };
  }

  return {
    async putExecution(input) {
      const parsed = ExecutionRecordSchema.safeParse(input);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
        throw new MovaError("invalid_execution_record", `invalid execution record: ${issues}`);
      }
      const record = parsed.data;
      const item = toItem(record);
      try {
        await guardDynamo(UNAVAILABLE, () =>
          client.send(
            new PutItemCommand({
              TableName: table,
              Item: item,
              // A suspended run's record is replaced as the run goes on; a finished one never.
              ConditionExpression: "attribute_not_exists(pk) OR #status = :waiting",
              ExpressionAttributeNames: { "#status": "status" },
              ExpressionAttributeValues: { ":waiting": { S: "waiting_input" } },
            }),
          ),
        );
      } catch (error) {
        if (!isConditionFailed(error)) throw error;
        // A retried write of the very same record is not a conflict.
        const existing = await readItem(record.tenant, record.executionId);
        if (existing?.record?.S === item.record?.S) return;
        throw new MovaError(
          "execution_already_finished",
          `execution ${record.executionId} is already recorded as finished`,
        );
      }
    },

    async getExecution(tenant, executionId) {
      const item = await readItem(tenant, executionId);
      if (!item || item.tenant?.S !== tenant) return undefined;
      return fromItem(item);
    },

    async queryExecutions(tenant, document, protocol, q: ExecutionQuery) {
      const range = timeRange(q.from, q.to);
      const filters: Record<string, string> = { tenant, document, protocol };
      if (q.status !== undefined) filters.status = q.status;
      return query(BY_PROTOCOL_TIME, protocolKey(tenant, document, protocol), range, filters, q);
    },

    async markAnalysis(tenant, executionId, analysis) {
      try {
        await guardDynamo(UNAVAILABLE, () =>
          client.send(
            new UpdateItemCommand({
              TableName: table,
              Key: { pk: { S: executionPk(tenant, executionId) }, sk: { S: EXECUTION_SK } },
              UpdateExpression: "SET analysis = :analysis",
              ConditionExpression: "attribute_exists(pk) AND tenant = :tenant",
              ExpressionAttributeValues: { ":analysis": { S: analysis }, ":tenant": { S: tenant } },
            }),
          ),
        );
      } catch (error) {
        // Gone (expired, or never stored): nothing left to mark.
        if (!isConditionFailed(error)) throw error;
      }
    },

    async queryByDay(day, page = {}) {
      return query(BY_DAY, dayKey(day), {}, {}, page);
    },

    async listPending(day, page = {}) {
      return query(BY_DAY, dayKey(day), {}, { analysis: "pending" }, page);
    },
  };

  async function readItem(tenant: string, executionId: string) {
    const result = await guardDynamo(UNAVAILABLE, () =>
      client.send(
        new GetItemCommand({
          TableName: table,
          Key: { pk: { S: executionPk(tenant, executionId) }, sk: { S: EXECUTION_SK } },
          ConsistentRead: true,
        }),
      ),
    );
    return result.Item;
  }
}

function fromItem(item: Record<string, AttributeValue>): ExecutionRecord {
  const record = ExecutionRecordSchema.parse(JSON.parse(item.record?.S ?? "null"));
  const analysis = item.analysis?.S;
  return analysis === "pending" || analysis === "published" || analysis === "waiting"
    ? { ...record, analysis }
    : record;
}

function keyOf(item: Record<string, AttributeValue>, index: IndexSpec): Record<string, AttributeValue> {
  const key: Record<string, AttributeValue> = {};
  for (const name of ["pk", "sk", index.pk, index.sk]) {
    const value = item[name];
    if (value) key[name] = value;
  }
  return key;
}

function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new MovaError("invalid_limit", `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
  }
  return limit;
}

/** A time as the canonical ISO string the sort keys use, or `fallback` when it is not a time. */
function isoOr(value: string, fallback: string): string {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? fallback : new Date(ms).toISOString();
}

function timeRange(from: string | undefined, to: string | undefined): { from?: string; to?: string } {
  const canonical = (value: string | undefined, name: string) => {
    if (value === undefined) return undefined;
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new MovaError("invalid_range", `${name} is not an ISO time: ${value}`);
    return new Date(ms).toISOString();
  };
  const range = { from: canonical(from, "from"), to: canonical(to, "to") };
  if (range.from !== undefined && range.to !== undefined && range.from > range.to) {
    throw new MovaError("invalid_range", "from is after to");
  }
  return {
    ...(range.from !== undefined ? { from: range.from } : {}),
    ...(range.to !== undefined ? { to: range.to } : {}),
  };
}

function dayKey(day: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) {
    throw new MovaError("invalid_range", `day must be YYYY-MM-DD: ${day}`);
  }
  return day;
}

/** Opaque to clients: base64url of the LastEvaluatedKey's string values. */
function encodeCursor(key: Record<string, AttributeValue>): string {
  const plain: Record<string, string> = {};
  for (const [name, value] of Object.entries(key)) if (value.S !== undefined) plain[name] = value.S;
  return Buffer.from(JSON.stringify(plain), "utf8").toString("base64url");
}

/**
 * A cursor is accepted only if it is one this query could have produced: the four key
 * attributes, all strings, in the same partition (a cursor from another tenant's or
 * protocol's listing cannot be used to read this one from an arbitrary point).
 */
function decodeCursor(cursor: string, index: IndexSpec, partition: string): Record<string, AttributeValue> {
  const invalid = () =>
    new MovaError("invalid_cursor", "the cursor is malformed or belongs to another query");
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw invalid();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  if (decoded === null || typeof decoded !== "object" || Array.isArray(decoded)) throw invalid();
  const fields = decoded as Record<string, unknown>;
  const expected = ["pk", "sk", index.pk, index.sk];
  if (Object.keys(fields).length !== expected.length) throw invalid();
  const key: Record<string, AttributeValue> = {};
  for (const name of expected) {
    const value = fields[name];
    if (typeof value !== "string" || value.length === 0) throw invalid();
    key[name] = { S: value };
  }
  if (fields[index.pk] !== partition) throw invalid();
  return key;
}
