/**
 * Execution history in DynamoDB (EXECUTIONS_TABLE). One item per execution:
 *
 *   pk `exec#<tenant>#<executionId>`, sk `exec`
 *   record   the ExecutionRecord as JSON text (outputs capped at outputMaxBytes); for a long
 *            run its summary (record-size.ts: the first steps that fit, `stepCount`, …)
 *   tenant, document, protocol, executionId, status, finishedAt, analysis   plain attributes
 *   stepPages, stepCount  how many step pages and step records the execution has (absent:
 *            its record holds every step)
 *   gsi1pk `<tenant>#<document>#<protocol>`, gsi1sk `<finishedAt>#<executionId>`  (index byProtocolTime)
 *   gsi2pk `<YYYY-MM-DD of finishedAt>`,      gsi2sk `<finishedAt>#<executionId>`  (index byDay)
 *   ttl      epoch seconds: finishedAt + retentionDays
 *
 * and, when the record does not hold every step record in full (a long run, or outputs
 * dropped to fit the item), one item per page of step records (record-size.ts pageSteps: at
 * most 25 steps or 300 KB), in the execution's partition, outside the indexes:
 *
 *   pk `exec#<tenant>#<executionId>`, sk `step#<page, 6 digits>`
 *   steps    the page's step records as JSON text; first  the run index of its first step
 *   digest   sha256 of `steps`; sealed  true once written for a finished execution
 *   tenant, executionId, ttl   as the execution's
 *
 * and, for a child run (`parentExecutionId`: a `call` or `foreach` step's run), one link item
 * in its parent's partition, outside the indexes, which GET /executions/{id}/children pages:
 *
 *   pk `exec#<tenant>#<parent executionId>`, sk `child#<parent step>#<visit, 6 digits>#<item, 6 digits or ->`
 *   child    the child's summary (ChildSummary) as JSON text; tenant, executionId, ttl as the child's
 *
 * written after the child's execution item (a listed child is always there to read), and
 * written again from the stored child when a retried write of it is refused (a link lost to
 * a crash between the two is repaired by the next try).
 *
 * Write order: every page first, then the execution item, so a finished status is never seen
 * without its steps (dynalite has no TransactWriteItems, and a long run needs more than its
 * 100 items anyway). Each page write is conditional: a sealed page (of a finished execution)
 * takes only the same content again, sealed (a retried write), never another content nor a
 * waiting run's write; an unsealed page takes the run's next write as it goes on. Readers read only the pages the execution item counts. One writer
 * at a time per execution is the callers' part (a session's CAS, a run's lease): two writers
 * of different finished records for one execution both fail (`execution_already_finished`).
 *
 * Key parts are URI-encoded (a `#` in a name cannot make two keys meet) and every query
 * also filters on the exact tenant/document/protocol attributes. `analysis` lives in its own
 * attribute (the batch analysis flips it without rewriting the record) and wins on read.
 * The idempotency records (lib/services/idempotency.ts) share the table under pk `idem#…`,
 * so nothing here collides.
 */
import type { AnalysisHistoryStore, ChildSummary, PageQuery } from "../../ports.ts";
import { createHash } from "node:crypto";
import { isMovaError, MovaError } from "../../errors.ts";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { type ExecutionRecord, ExecutionRecordSchema } from "../../core/execution-record.ts";
import { guardDynamo, isConditionFailed, keyPart, queryItems } from "./errors.ts";
import type { ExecutionPage, ExecutionQuery, StepPage, StepQuery } from "../../ports.ts";
import {
  PAGE_MAX_STEPS,
  type StepPageContent,
  capOutputs,
  fitStep,
  pageSteps,
  shrinkRecord,
  summarizeRecord,
  utf8Bytes,
} from "../../core/record-size.ts";

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

const DEFAULT_PAGE_LIMIT = 20;
const MAX_PAGE_LIMIT = 100;
const UNAVAILABLE = "history_unavailable";
/** Below DynamoDB's 400 KB item limit, with room for the key and index attributes. */
const MAX_RECORD_BYTES = 350_000;
/** Pages read to fill one filtered page before answering with a shorter page and a cursor. */
const MAX_PAGES_PER_QUERY = 10;

/** Step records per GET /executions/{id}/steps page: default and most. */
const DEFAULT_STEP_LIMIT = 25;
const MAX_STEP_LIMIT = 100;
/** A page of steps answered stops at this much JSON (one step at least), well inside a Lambda response. */
const MAX_STEP_PAGE_BYTES = 1_000_000;
/** Step pages written at once. */
const PAGE_WRITE_CONCURRENCY = 16;
const FINISHED: ReadonlySet<string> = new Set(["completed", "failed", "timed_out", "cancelled"]);

const executionPk = (tenant: string, executionId: string) =>
  `exec#${keyPart(tenant)}#${keyPart(executionId)}`;
const EXECUTION_SK = "exec";
const stepPageSk = (page: number) => `step#${String(page).padStart(6, "0")}`;
const CHILD_SK_PREFIX = "child#";
const childLinkSk = (record: ExecutionRecord) =>
  `${CHILD_SK_PREFIX}${keyPart(record.parentStep ?? "")}#${String(record.parentVisit ?? 1).padStart(6, "0")}#${
    record.itemIndex === undefined ? "-" : String(record.itemIndex).padStart(6, "0")
  }`;
const protocolKey = (tenant: string, document: string, protocol: string) =>
  `${keyPart(tenant)}#${keyPart(document)}#${keyPart(protocol)}`;

interface IndexSpec {
  name: "byProtocolTime" | "byDay";
  pk: "gsi1pk" | "gsi2pk";
  sk: "gsi1sk" | "gsi2sk";
}
const BY_PROTOCOL_TIME: IndexSpec = { name: "byProtocolTime", pk: "gsi1pk", sk: "gsi1sk" };
const BY_DAY: IndexSpec = { name: "byDay", pk: "gsi2pk", sk: "gsi2sk" };

export function createDynamoHistoryStore(options: DynamoHistoryStoreOptions): AnalysisHistoryStore {
  const { client, table } = options;
  const now = options.now ?? Date.now;

  function ttlOf(finishedAt: string): number {
    return Math.floor(Date.parse(finishedAt) / 1000) + options.retentionDays * 86_400;
  }

  /** The execution item of `record` as kept (capped, or a summary). */
  function toItem(record: ExecutionRecord, stepPages: number | undefined): Record<string, AttributeValue> {
    const finishedAt = finishedAtOf(record);
    const sortKey = `${finishedAt}#${record.executionId}`;
    const ttl = ttlOf(finishedAt);
    return {
      pk: { S: executionPk(record.tenant, record.executionId) },
      sk: { S: EXECUTION_SK },
      record: { S: JSON.stringify(record) },
      tenant: { S: record.tenant },
      document: { S: record.document },
      protocol: { S: record.protocol },
      executionId: { S: record.executionId },
      status: { S: record.status },
      finishedAt: { S: finishedAt },
      analysis: { S: record.analysis },
      ...(stepPages !== undefined
        ? {
            stepPages: { N: String(stepPages) },
            stepCount: { N: String(record.stepCount ?? record.steps.length) },
          }
        : {}),
      ttl: { N: String(ttl) },
      gsi1pk: { S: protocolKey(record.tenant, record.document, record.protocol) },
      gsi1sk: { S: sortKey },
      gsi2pk: { S: finishedAt.slice(0, 10) },
      gsi2sk: { S: sortKey },
    };
  }

  function finishedAtOf(record: ExecutionRecord): string {
    return isoOr(record.finishedAt, new Date(now()).toISOString());
  }

  function pageItem(
    record: ExecutionRecord,
    page: StepPageContent,
    index: number,
    ttl: number,
  ): Record<string, AttributeValue> {
    return {
      pk: { S: executionPk(record.tenant, record.executionId) },
      sk: { S: stepPageSk(index) },
      tenant: { S: record.tenant },
      executionId: { S: record.executionId },
      first: { N: String(page.first) },
      steps: { S: page.json },
      digest: { S: digestOf(page.json) },
      sealed: { BOOL: FINISHED.has(record.status) },
      ttl: { N: String(ttl) },
    };
  }

  /** Writes the pages, a few at a time; throws `execution_already_finished` on a sealed page of other content. */
  async function writePages(record: ExecutionRecord, pages: StepPageContent[]): Promise<void> {
    const ttl = ttlOf(finishedAtOf(record));
    const sealed = FINISHED.has(record.status);
    let next = 0;
    const worker = async () => {
      while (next < pages.length) {
        const index = next++;
        const item = pageItem(record, pages[index]!, index, ttl);
        // A sealed page takes only its own content again, and only sealed: a stale write of
        // the waiting run must not unseal it for a third writer.
        const condition: Pick<PutItemCommandInput, "ConditionExpression" | "ExpressionAttributeValues"> =
          sealed
            ? {
                ConditionExpression: "attribute_not_exists(pk) OR sealed = :false OR digest = :digest",
                ExpressionAttributeValues: { ":false": { BOOL: false }, ":digest": item.digest! },
              }
            : {
                ConditionExpression: "attribute_not_exists(pk) OR sealed = :false",
                ExpressionAttributeValues: { ":false": { BOOL: false } },
              };
        try {
          await guardDynamo(UNAVAILABLE, () =>
            client.send(new PutItemCommand({ TableName: table, Item: item, ...condition })),
          );
        } catch (error) {
          if (!isConditionFailed(error)) throw error;
          throw alreadyFinished(record.executionId);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PAGE_WRITE_CONCURRENCY, pages.length) }, worker));
  }

  async function putExecutionItem(record: ExecutionRecord, item: Record<string, AttributeValue>) {
    try {
      await guardDynamo(UNAVAILABLE, () =>
        client.send(
          new PutItemCommand({
            TableName: table,
            Item: item,
            // A suspended or running run's record is replaced as the run goes on; a finished one never.
            ConditionExpression: "attribute_not_exists(pk) OR #status IN (:waiting, :running)",
            ExpressionAttributeNames: { "#status": "status" },
            ExpressionAttributeValues: { ":waiting": { S: "waiting_input" }, ":running": { S: "running" } },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
      // A retried write of the very same record is not a conflict.
      const existing = await readItem(record.tenant, record.executionId);
      if (existing?.record?.S === item.record?.S && existing?.stepPages?.N === item.stepPages?.N) return;
      throw alreadyFinished(record.executionId);
    }
  }

  /** The child's link in its parent's partition (see the header): its summary, as the listing shows it. */
  async function putChildLink(record: ExecutionRecord): Promise<void> {
    if (record.parentExecutionId === undefined) return;
    const summary: ChildSummary = {
      executionId: record.executionId,
      protocol: record.protocol,
      status: record.status,
      startedAt: record.startedAt,
      finishedAt: record.finishedAt,
      durationMs: record.durationMs,
      ...(record.error !== undefined ? { error: record.error } : {}),
      ...(record.outcome !== undefined ? { outcome: record.outcome } : {}),
      ...(record.parentStep !== undefined ? { parentStep: record.parentStep } : {}),
      ...(record.parentVisit !== undefined ? { parentVisit: record.parentVisit } : {}),
      ...(record.itemIndex !== undefined ? { itemIndex: record.itemIndex } : {}),
    };
    await guardDynamo(UNAVAILABLE, () =>
      client.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            pk: { S: executionPk(record.tenant, record.parentExecutionId!) },
            sk: { S: childLinkSk(record) },
            tenant: { S: record.tenant },
            executionId: { S: record.executionId },
            child: { S: JSON.stringify(summary) },
            ttl: { N: String(ttlOf(finishedAtOf(record))) },
          },
        }),
      ),
    );
  }

  /** Writes the record: its pages (if it needs them), then its execution item. */
  async function writeRecord(record: ExecutionRecord): Promise<void> {
    const capped = capOutputs(record, options.outputMaxBytes);
    const full: ExecutionRecord = { ...capped, steps: capped.steps.map((step) => fitStep(step)) };
    const summary = summarizeRecord(full);
    const stored = shrinkRecord(summary, MAX_RECORD_BYTES, (r) => utf8Bytes(JSON.stringify(r)));
    if (summary.stepCount === undefined && stored === summary) {
      // Every step record fits in the execution item: no pages.
      await putExecutionItem(record, toItem(stored, undefined));
      return;
    }
    const pages = pageSteps(full.steps);
    await writePages(record, pages);
    const kept: ExecutionRecord =
      stored.stepCount === undefined ? { ...stored, stepCount: full.steps.length } : stored;
    await putExecutionItem(record, toItem(kept, pages.length));
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
      if (
        (record.stepCount !== undefined && record.stepCount !== record.steps.length) ||
        (record.pathLength !== undefined && record.pathLength !== record.path.length)
      ) {
        throw new MovaError(
          "invalid_execution_record",
          "invalid execution record: a summary (stepCount, pathLength) cannot stand for the whole run",
        );
      }
      try {
        await writeRecord(record);
      } catch (error) {
        // A child recorded before (its parent's step ran again): its link is written from the
        // stored record, in case the first write stopped between the two.
        if (record.parentExecutionId !== undefined && isMovaError(error, "execution_already_finished")) {
          const existing = await readItem(record.tenant, record.executionId);
          if (existing?.tenant?.S === record.tenant) await putChildLink(fromItem(existing));
        }
        throw error;
      }
      if (FINISHED.has(record.status)) await putChildLink(record);
    },

    async listChildren(tenant, executionId, page: PageQuery = {}) {
      const limit = pageLimit(page.limit);
      const head = await readItem(tenant, executionId, ["tenant"]);
      if (!head || head.tenant?.S !== tenant) return undefined;
      const pk = executionPk(tenant, executionId);
      const after = page.cursor === undefined ? undefined : decodeChildCursor(page.cursor, executionId);
      const result = await guardDynamo(UNAVAILABLE, () =>
        client.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues: { ":pk": { S: pk }, ":prefix": { S: CHILD_SK_PREFIX } },
            ...(after !== undefined ? { ExclusiveStartKey: { pk: { S: pk }, sk: { S: after } } } : {}),
            ConsistentRead: true,
            Limit: limit,
          }),
        ),
      );
      const items = (result.Items ?? [])
        .filter((item) => item.tenant?.S === tenant)
        .map((item) => JSON.parse(item.child?.S ?? "null") as ChildSummary);
      const last = result.LastEvaluatedKey?.sk?.S;
      return last !== undefined ? { items, cursor: encodeChildCursor(executionId, last) } : { items };
    },

    async getExecution(tenant, executionId) {
      const item = await readItem(tenant, executionId);
      if (!item || item.tenant?.S !== tenant) return undefined;
      return fromItem(item);
    },

    async getSteps(tenant, executionId, query: StepQuery = {}): Promise<StepPage | undefined> {
      const limit = stepLimit(query.limit);
      // A long run's summary is large and its steps are in the pages: read only its counts.
      const head = await readItem(tenant, executionId, ["tenant", "stepPages", "stepCount"]);
      if (!head || head.tenant?.S !== tenant) return undefined;
      const pages = Number(head.stepPages?.N ?? "0");
      const item = pages === 0 ? await readItem(tenant, executionId) : undefined;
      if (pages === 0 && (!item || item.tenant?.S !== tenant)) return undefined;
      const record = item ? fromItem(item) : undefined;
      const total = record ? record.steps.length : Number(head.stepCount?.N);
      if (!Number.isSafeInteger(total)) throw new Error(`execution ${executionId}: no step count`);
      const start =
        query.cursor === undefined ? { index: 0, page: 0 } : decodeStepCursor(query.cursor, executionId);
      if (start.index >= total || (pages === 0 ? start.page !== 0 : start.page >= pages)) {
        throw invalidStepCursor();
      }
      const steps: ExecutionRecord["steps"] = [];
      let bytes = 0;
      /** Takes `step` (at run index `index`, on `page`) unless the page of steps is full: then its cursor. */
      const take = (step: ExecutionRecord["steps"][number], index: number, page: number) => {
        const size = utf8Bytes(JSON.stringify(step));
        if (steps.length === limit || (steps.length > 0 && bytes + size > MAX_STEP_PAGE_BYTES)) {
          return encodeStepCursor(executionId, index, page);
        }
        steps.push(step);
        bytes += size;
        return undefined;
      };

      if (record) {
        for (let index = start.index; index < total; index++) {
          const cursor = take(record.steps[index]!, index, 0);
          if (cursor !== undefined) return { steps, cursor, total };
        }
        return { steps, total };
      }

      let expectedFirst: number | undefined;
      let expectedPage = start.page;
      for await (const pageItem of queryItems(client, UNAVAILABLE, {
        TableName: table,
        KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
        ExpressionAttributeValues: {
          ":pk": { S: executionPk(tenant, executionId) },
          ":from": { S: stepPageSk(start.page) },
          ":to": { S: stepPageSk(pages - 1) },
        },
        ConsistentRead: true,
        Limit: Math.ceil(limit / PAGE_MAX_STEPS) + 1,
      })) {
        const page = expectedPage++;
        const first = Number(pageItem.first?.N);
        const pageSteps = JSON.parse(pageItem.steps?.S ?? "null") as ExecutionRecord["steps"];
        if (pageItem.sk?.S !== stepPageSk(page) || !Array.isArray(pageSteps) || !Number.isInteger(first)) {
          throw new Error(`execution ${executionId}: step page ${page} is missing or malformed`);
        }
        if (expectedFirst === undefined) {
          // The cursor's step must lie on the cursor's page.
          if (start.index < first || start.index >= first + pageSteps.length) throw invalidStepCursor();
        } else if (first !== expectedFirst) {
          throw new Error(
            `execution ${executionId}: step page ${page} starts at ${first}, not ${expectedFirst}`,
          );
        }
        expectedFirst = first + pageSteps.length;
        for (let offset = Math.max(0, start.index - first); offset < pageSteps.length; offset++) {
          const cursor = take(pageSteps[offset]!, first + offset, page);
          if (cursor !== undefined) return { steps, cursor, total };
        }
        if (expectedFirst >= total) break;
      }
      if ((expectedFirst ?? start.index) < total) {
        throw new Error(`execution ${executionId}: its step pages end before its ${total} steps`);
      }
      return { steps, total };
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
      const { tenant, ...rest } = page;
      return query(BY_DAY, dayKey(day), {}, tenant === undefined ? {} : { tenant }, rest);
    },

    async listPending(day, page = {}) {
      return query(BY_DAY, dayKey(day), {}, { analysis: "pending" }, page);
    },
  };

  /** The execution item, or only the named attributes of it. */
  async function readItem(tenant: string, executionId: string, attributes?: readonly string[]) {
    const projection = attributes
      ? {
          ProjectionExpression: attributes.map((_, i) => `#a${i}`).join(", "),
          ExpressionAttributeNames: Object.fromEntries(attributes.map((name, i) => [`#a${i}`, name])),
        }
      : {};
    const result = await guardDynamo(UNAVAILABLE, () =>
      client.send(
        new GetItemCommand({
          TableName: table,
          Key: { pk: { S: executionPk(tenant, executionId) }, sk: { S: EXECUTION_SK } },
          ConsistentRead: true,
          ...projection,
        }),
      ),
    );
    return result.Item;
  }
}

/** A cursor is base64url of JSON: opaque to clients, and read back only as it was made. */
function encodeOpaqueCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/** The JSON a cursor holds; `invalid()` is thrown for anything but base64url (≤ 2048 characters) of JSON. */
function decodeOpaqueCursor(cursor: string, invalid: () => MovaError): unknown {
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw invalid();
  try {
    return JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
}

const invalidChildCursor = () =>
  new MovaError("invalid_cursor", "the cursor is malformed or of another execution");

/** Opaque to clients: base64url of the parent's execution id and the last link's sort key. */
function encodeChildCursor(executionId: string, sk: string): string {
  return encodeOpaqueCursor({ e: executionId, s: sk });
}

function decodeChildCursor(cursor: string, executionId: string): string {
  const decoded = decodeOpaqueCursor(cursor, invalidChildCursor);
  const { e, s } = (decoded ?? {}) as { e?: unknown; s?: unknown };
  if (e !== executionId || typeof s !== "string" || !s.startsWith(CHILD_SK_PREFIX))
    throw invalidChildCursor();
  return s;
}

const alreadyFinished = (executionId: string) =>
  new MovaError("execution_already_finished", `execution ${executionId} is already recorded as finished`);

const digestOf = (text: string) => createHash("sha256").update(text).digest("base64url");

function stepLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_STEP_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_STEP_LIMIT) {
    throw new MovaError("invalid_limit", `limit must be an integer from 1 to ${MAX_STEP_LIMIT}`);
  }
  return limit;
}

const invalidStepCursor = () =>
  new MovaError("invalid_cursor", "the cursor is malformed, past the run's end or of another execution");

/** Opaque to clients: base64url of the execution id, the run index of the next step and its page. */
function encodeStepCursor(executionId: string, index: number, page: number): string {
  return encodeOpaqueCursor({ e: executionId, i: index, p: page });
}

function decodeStepCursor(cursor: string, executionId: string): { index: number; page: number } {
  const decoded = decodeOpaqueCursor(cursor, invalidStepCursor);
  const { e, i, p } = (decoded ?? {}) as { e?: unknown; i?: unknown; p?: unknown };
  if (
    e !== executionId ||
    typeof i !== "number" ||
    typeof p !== "number" ||
    !Number.isSafeInteger(i) ||
    !Number.isSafeInteger(p) ||
    i < 0 ||
    p < 0
  ) {
    throw invalidStepCursor();
  }
  return { index: i, page: p };
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
  return encodeOpaqueCursor(plain);
}

/**
 * A cursor is accepted only if it is one this query could have produced: the four key
 * attributes, all strings, in the same partition (a cursor from another tenant's or
 * protocol's listing cannot be used to read this one from an arbitrary point).
 */
function decodeCursor(cursor: string, index: IndexSpec, partition: string): Record<string, AttributeValue> {
  const invalid = () =>
    new MovaError("invalid_cursor", "the cursor is malformed or belongs to another query");
  const decoded = decodeOpaqueCursor(cursor, invalid);
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
