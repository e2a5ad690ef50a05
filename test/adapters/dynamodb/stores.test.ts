/** The DynamoDB document and history stores against dynalite, tables created from infra/resources.yml. */
import { MovaError, StoreUnavailableError } from "../../../lib/errors.ts";
import {
  DeleteItemCommand,
  GetItemCommand,
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandOutput,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../../infra/local/stack.ts";
import { loadConfig } from "../../../lib/config.ts";
import { createDynamoDbClient } from "../../../lib/adapters/aws-clients.ts";
import { createDynamoDocumentStore } from "../../../lib/adapters/dynamodb/document-store.ts";
import { queryItems } from "../../../lib/adapters/dynamodb/errors.ts";
import { createDynamoHistoryStore } from "../../../lib/adapters/dynamodb/history-store.ts";
import type { AnalysisHistoryStore } from "../../../lib/ports.ts";
import { longExecution, sampleExecution, uniqueTenant } from "../../support/runtime-fixtures.ts";
import type { ExecutionRecord } from "../../../lib/core/execution-record.ts";
import { PAGE_MAX_STEPS } from "../../../lib/core/record-size.ts";

let stack: LocalStack;
let client: DynamoDBClient;

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
  client = createDynamoDbClient(loadConfig(stack.env), { env: stack.env });
});

afterAll(async () => {
  client?.destroy();
  await stack?.stop();
});

describe("queryItems", () => {
  it("reads every page of a query, and no page past where the caller stops", async () => {
    const tenant = uniqueTenant("pages");
    const store = createDynamoDocumentStore({ client, table: stack.env.DOCUMENTS_TABLE! });
    for (const name of ["a", "b", "c", "d", "e"]) await store.put(tenant, name, { name });
    const queries: number[] = [];
    const counting = {
      send: (command: QueryCommand) => {
        queries.push(command.input.ExclusiveStartKey ? 1 : 0);
        return client.send(command);
      },
    } as unknown as DynamoDBClient;
    // The document store's pointers: one item per document, two per page.
    const input = {
      TableName: stack.env.DOCUMENTS_TABLE!,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": { S: `doc#${encodeURIComponent(tenant)}` } },
      Limit: 2,
    };
    const names: string[] = [];
    for await (const item of queryItems(counting, "test_unavailable", input)) names.push(item.name!.S!);
    expect(names.sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect(queries).toEqual([0, 1, 1]);

    queries.length = 0;
    const firstTwo: string[] = [];
    for await (const item of queryItems(counting, "test_unavailable", input)) {
      firstTwo.push(item.name!.S!);
      if (firstTwo.length === 2) break;
    }
    expect(firstTwo).toHaveLength(2);
    expect(queries).toEqual([0]);
  });

  it("turns an unreachable DynamoDB into StoreUnavailableError with the store's code", async () => {
    const down = createDynamoDbClient(
      loadConfig({ ...stack.env, AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9" }),
      { env: { ...stack.env, AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9" } },
    );
    try {
      const read = async () => {
        for await (const _ of queryItems(down, "test_unavailable", {
          TableName: "documents",
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": { S: "x" } },
        }));
      };
      await expect(read()).rejects.toMatchObject({ code: "test_unavailable" });
      await expect(read()).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      down.destroy();
    }
  });
});

describe("dynamo document store", () => {
  const store = () => createDynamoDocumentStore({ client, table: stack.env.DOCUMENTS_TABLE! });

  it("versions a document only when its content changes, with a hash over canonical JSON", async () => {
    const tenant = uniqueTenant("docs");
    const first = await store().put(tenant, "support", { b: 1, a: { y: [1, 2], x: "s" } });
    expect(first.version).toBe(1);
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);

    // Same content, keys in another order: same hash, same version, nothing new written.
    const same = await store().put(tenant, "support", { a: { x: "s", y: [1, 2] }, b: 1 });
    expect(same).toEqual(first);

    const second = await store().put(tenant, "support", { b: 2, a: { y: [1, 2], x: "s" } });
    expect(second.version).toBe(2);
    expect(second.hash).not.toBe(first.hash);
    expect(await store().get(tenant, "support")).toEqual(second);
    // The source is kept as sent.
    expect((await store().get(tenant, "support"))?.source).toEqual({ b: 2, a: { y: [1, 2], x: "s" } });
  });

  it("gives concurrent puts of different content distinct consecutive versions", async () => {
    const tenant = uniqueTenant("race");
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, n) => store().put(tenant, "flow", { n })),
    );
    expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    const latest = await store().get(tenant, "flow");
    expect(latest?.version).toBe(6);
    expect(results.find((r) => r.version === 6)?.source).toEqual(latest?.source);
    // Every version is its own item: version 1 is still readable as written.
    const v1 = results.find((r) => r.version === 1)!;
    const item = await client.send(
      new GetItemCommand({
        TableName: stack.env.DOCUMENTS_TABLE,
        Key: { pk: { S: `docver#${encodeURIComponent(tenant)}#flow` }, sk: { S: "v#0000000001" } },
      }),
    );
    expect(JSON.parse(item.Item?.source?.S ?? "null")).toEqual(v1.source);
  });

  it("lists a tenant's documents at their latest version, and no other tenant's", async () => {
    const tenant = uniqueTenant("list");
    const other = uniqueTenant("other");
    await store().put(tenant, "a", { v: 1 });
    await store().put(tenant, "a", { v: 2 });
    await store().put(tenant, "b#x", { v: 1 });
    await store().put(other, "c", { v: 1 });
    const listed = await store().list(tenant);
    expect(listed.map((d) => [d.name, d.version]).sort()).toEqual([
      ["a", 2],
      ["b#x", 1],
    ]);
    expect(listed.every((d) => !("source" in d))).toBe(true);
    expect(await store().get(other, "a")).toBeUndefined();
  });
});

describe("dynamo history store", () => {
  let history: AnalysisHistoryStore;
  beforeAll(() => {
    history = createDynamoHistoryStore({
      client,
      table: stack.env.EXECUTIONS_TABLE!,
      retentionDays: 90,
      outputMaxBytes: 64,
    });
  });

  it("stores an execution and reads it back, with a TTL of finishedAt + retention", async () => {
    const tenant = uniqueTenant("get");
    const record = sampleExecution({ tenant, finishedAt: "2030-01-02T03:04:05.000Z" });
    await history.putExecution(record);
    expect(await history.getExecution(tenant, record.executionId)).toEqual(record);
    expect(await history.getExecution(uniqueTenant("other"), record.executionId)).toBeUndefined();

    const raw = await client.send(
      new GetItemCommand({
        TableName: stack.env.EXECUTIONS_TABLE,
        Key: { pk: { S: `exec#${tenant}#${record.executionId}` }, sk: { S: "exec" } },
      }),
    );
    expect(Number(raw.Item?.ttl?.N)).toBe(Date.parse("2030-01-02T03:04:05.000Z") / 1000 + 90 * 86_400);
    expect(raw.Item?.gsi1pk?.S).toBe(`${tenant}#support#refund`);
    expect(raw.Item?.gsi2pk?.S).toBe("2030-01-02");
  });

  it("never overwrites a finished execution, but replaces a suspended one", async () => {
    const tenant = uniqueTenant("cond");
    const waiting = sampleExecution({ tenant, status: "waiting_input" });
    await history.putExecution(waiting);
    const finished = { ...waiting, status: "completed" as const, path: ["ask", "answer", "done"] };
    await history.putExecution(finished);
    expect((await history.getExecution(tenant, waiting.executionId))?.status).toBe("completed");

    // The same record again is an idempotent retry, not a conflict.
    await history.putExecution(finished);
    const rewrite = { ...finished, status: "failed" as const };
    await expect(history.putExecution(rewrite)).rejects.toMatchObject({ code: "execution_already_finished" });
    await expect(history.putExecution({ ...finished, status: "waiting_input" })).rejects.toMatchObject({
      code: "execution_already_finished",
    });
    expect(await history.getExecution(tenant, waiting.executionId)).toEqual(finished);
  });

  it("cuts step outputs over the cap and marks them", async () => {
    const tenant = uniqueTenant("cut");
    const record = sampleExecution({ tenant });
    record.steps = [
      { ...record.steps[0]!, id: "big", output: { text: "é".repeat(200) } },
      { ...record.steps[0]!, id: "small", output: { ok: true } },
    ];
    await history.putExecution(record);
    const stored = await history.getExecution(tenant, record.executionId);
    const big = stored?.steps[0];
    expect(big?.outputTruncated).toBe(true);
    expect(typeof big?.output).toBe("string");
    expect(Buffer.byteLength(big?.output as string)).toBeLessThanOrEqual(64);
    expect(big?.output).toMatch(/^\{"text":"é+$/);
    expect(stored?.steps[1]).toEqual(record.steps[1]);
  });

  it("rejects an invalid record with a code and writes nothing", async () => {
    const record = sampleExecution({ tenant: uniqueTenant("bad") });
    const error = await history.putExecution({ ...record, status: "exploded" as never }).catch((e) => e);
    expect(error.code).toBe("invalid_execution_record");
    expect(await history.getExecution(record.tenant, record.executionId)).toBeUndefined();
  });

  describe("queries by protocol and time", () => {
    const tenant = uniqueTenant("query");
    const base = Date.parse("2031-05-01T00:00:00.000Z");
    const minutes = (n: number) => new Date(base + n * 60_000).toISOString();
    // 12 executions a minute apart; every third failed.
    const records = Array.from({ length: 12 }, (_, n) =>
      sampleExecution({ tenant, finishedAt: minutes(n), status: n % 3 === 0 ? "failed" : "completed" }),
    );

    beforeAll(async () => {
      await Promise.all(records.map((r) => history.putExecution(r)));
      await history.putExecution(sampleExecution({ tenant, protocol: "other", finishedAt: minutes(5) }));
      await history.putExecution(sampleExecution({ tenant: uniqueTenant("x"), finishedAt: minutes(5) }));
    });

    const ids = (items: Array<{ executionId: string }>) => items.map((r) => r.executionId);
    const newestFirst = [...records].reverse();

    it("returns newest first, with the default limit of 20", async () => {
      const page = await history.queryExecutions(tenant, "support", "refund", {});
      expect(ids(page.items)).toEqual(ids(newestFirst));
      expect(page.cursor).toBeUndefined();
    });

    it("pages with limit and an opaque cursor, without gaps or repeats", async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await history.queryExecutions(tenant, "support", "refund", { limit: 5, cursor });
        expect(page.items.length).toBeLessThanOrEqual(5);
        seen.push(...ids(page.items));
        cursor = page.cursor;
        pages++;
      } while (cursor && pages < 10);
      expect(seen).toEqual(ids(newestFirst));
      expect(pages).toBeGreaterThanOrEqual(3);
    });

    it("bounds by from and to (inclusive), and filters by status across pages", async () => {
      const inRange = await history.queryExecutions(tenant, "support", "refund", {
        from: minutes(3),
        to: minutes(7),
      });
      expect(ids(inRange.items)).toEqual(ids(records.slice(3, 8).reverse()));
      const fromOnly = await history.queryExecutions(tenant, "support", "refund", { from: minutes(10) });
      expect(ids(fromOnly.items)).toEqual(ids(records.slice(10).reverse()));
      const toOnly = await history.queryExecutions(tenant, "support", "refund", { to: minutes(1) });
      expect(ids(toOnly.items)).toEqual(ids(records.slice(0, 2).reverse()));

      const failed: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await history.queryExecutions(tenant, "support", "refund", {
          status: "failed",
          limit: 2,
          cursor,
        });
        expect(page.items.every((r) => r.status === "failed")).toBe(true);
        failed.push(...ids(page.items));
        cursor = page.cursor;
      } while (cursor);
      expect(failed).toEqual(ids(newestFirst.filter((r) => r.status === "failed")));
    });

    it("rejects a malformed or foreign cursor, a bad limit and a bad range with codes", async () => {
      const codeOf = (query: Parameters<AnalysisHistoryStore["queryExecutions"]>[3], protocol = "refund") =>
        history.queryExecutions(tenant, "support", protocol, query).then(
          () => "accepted",
          (error) => (error instanceof MovaError ? error.code : String(error)),
        );
      expect(await codeOf({ cursor: "not a cursor!" })).toBe("invalid_cursor");
      expect(await codeOf({ cursor: Buffer.from("[1,2]").toString("base64url") })).toBe("invalid_cursor");
      expect(await codeOf({ cursor: Buffer.from('{"pk":"x"}').toString("base64url") })).toBe(
        "invalid_cursor",
      );
      const page = await history.queryExecutions(tenant, "support", "refund", { limit: 2 });
      expect(await codeOf({ cursor: page.cursor }, "other")).toBe("invalid_cursor");
      expect(await codeOf({ limit: 0 })).toBe("invalid_limit");
      expect(await codeOf({ limit: 101 })).toBe("invalid_limit");
      expect(await codeOf({ from: "yesterday" })).toBe("invalid_range");
      expect(await codeOf({ from: minutes(5), to: minutes(1) })).toBe("invalid_range");
    });

    it("serves the batch analysis by day, and lists pending executions until marked", async () => {
      const day = await history.queryByDay("2031-05-01", { limit: 100 });
      const ours = day.items.filter((r) => r.tenant === tenant && r.protocol === "refund");
      expect(ids(ours)).toEqual(ids(newestFirst));

      const pending = records[4]!;
      await history.markAnalysis(tenant, pending.executionId, "pending");
      expect((await history.getExecution(tenant, pending.executionId))?.analysis).toBe("pending");
      expect(ids((await history.listPending("2031-05-01")).items)).toContain(pending.executionId);

      await history.markAnalysis(tenant, pending.executionId, "published");
      expect(ids((await history.listPending("2031-05-01")).items)).not.toContain(pending.executionId);
      // Marking a missing execution is a no-op, and another tenant cannot mark ours.
      await history.markAnalysis(tenant, "no-such-execution", "published");
      await history.markAnalysis(uniqueTenant("y"), pending.executionId, "pending");
      expect((await history.getExecution(tenant, pending.executionId))?.analysis).toBe("published");
    });
  });

  describe("a long run's steps", () => {
    /** Every step record of the execution, read page after page with `limit`. */
    async function readAllSteps(tenant: string, executionId: string, limit?: number) {
      const steps: ExecutionRecord["steps"] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await history.getSteps(tenant, executionId, { cursor, ...(limit ? { limit } : {}) });
        if (!page) throw new Error("no such execution");
        steps.push(...page.steps);
        cursor = page.cursor;
        pages++;
      } while (cursor && pages < 1_000);
      return { steps, pages };
    }

    async function rawItems(tenant: string, executionId: string) {
      const items: NonNullable<QueryCommandOutput["Items"]> = [];
      let startKey: QueryCommandOutput["LastEvaluatedKey"];
      do {
        const page = await client.send(
          new QueryCommand({
            TableName: stack.env.EXECUTIONS_TABLE,
            KeyConditionExpression: "pk = :pk",
            ExpressionAttributeValues: { ":pk": { S: `exec#${tenant}#${executionId}` } },
            ExclusiveStartKey: startKey,
          }),
        );
        items.push(...(page.Items ?? []));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      return items;
    }

    it("keeps a 3,000-step run: its summary in the item, every step in pages, read in order", async () => {
      const tenant = uniqueTenant("long");
      const record = longExecution(3_000, {
        tenant,
        status: "failed",
        error: { code: "tool_http_status", message: "503" },
      });
      await history.putExecution(record);

      const summary = await history.getExecution(tenant, record.executionId);
      expect(summary).toMatchObject({
        status: "failed",
        stepCount: 3_000,
        pathLength: 3_000,
        failedStepId: "count",
      });
      expect(summary!.steps.length).toBeLessThan(3_000);
      expect(summary!.steps).toEqual(record.steps.slice(0, summary!.steps.length));

      const items = await rawItems(tenant, record.executionId);
      const pages = items.filter((item) => item.sk?.S?.startsWith("step#"));
      expect(pages).toHaveLength(3_000 / PAGE_MAX_STEPS);
      expect(pages[0]?.sk?.S).toBe("step#000000");
      expect(pages.every((item) => item.sealed?.BOOL === true && item.gsi1pk === undefined)).toBe(true);
      const execItem = items.find((item) => item.sk?.S === "exec")!;
      expect(execItem.stepPages?.N).toBe(String(3_000 / PAGE_MAX_STEPS));
      expect(JSON.stringify(execItem).length).toBeLessThan(400_000);

      const first = await history.getSteps(tenant, record.executionId);
      expect(first?.steps).toEqual(record.steps.slice(0, 25));
      expect(first?.total).toBe(3_000);
      for (const limit of [100, 37]) {
        const { steps, pages: reads } = await readAllSteps(tenant, record.executionId, limit);
        expect(steps).toEqual(record.steps);
        expect(reads).toBe(Math.ceil(3_000 / limit));
      }
      // The same record again is a retry, not a conflict; the day's listing holds its summary.
      await history.putExecution(record);
      const listed = await history.queryExecutions(tenant, "support", "refund", {});
      expect(listed.items).toEqual([summary]);
    });

    it("grows a waiting run's pages, then seals them: a finished run's steps never change", async () => {
      const tenant = uniqueTenant("seal");
      const finished = longExecution(3_000, { tenant });
      const waiting: ExecutionRecord = {
        ...finished,
        status: "waiting_input",
        analysis: "waiting",
        steps: finished.steps.slice(0, 2_010),
        path: finished.path.slice(0, 2_010),
      };
      await history.putExecution(waiting);
      expect((await history.getSteps(tenant, finished.executionId))?.total).toBe(2_010);
      await history.putExecution(finished);
      expect((await readAllSteps(tenant, finished.executionId, 100)).steps).toEqual(finished.steps);

      // A stale write of the waiting run, or another ending, is refused and changes nothing.
      await expect(history.putExecution(waiting)).rejects.toMatchObject({
        code: "execution_already_finished",
      });
      const other = { ...finished, steps: finished.steps.map((step) => ({ ...step, durationMs: 99 })) };
      await expect(history.putExecution(other)).rejects.toMatchObject({ code: "execution_already_finished" });
      expect((await readAllSteps(tenant, finished.executionId, 100)).steps).toEqual(finished.steps);
      expect((await history.getExecution(tenant, finished.executionId))?.status).toBe("completed");
    });

    it("pages outputs that do not fit the item, so the record keeps every step and the pages every output", async () => {
      const store = createDynamoHistoryStore({
        client,
        table: stack.env.EXECUTIONS_TABLE!,
        retentionDays: 90,
        outputMaxBytes: 8_192,
      });
      const tenant = uniqueTenant("outputs");
      const record = sampleExecution({ tenant });
      record.steps = Array.from({ length: 60 }, (_, n) => ({
        ...record.steps[0]!,
        id: `s${n}`,
        output: "o".repeat(8_000),
      }));
      await store.putExecution(record);
      const summary = await store.getExecution(tenant, record.executionId);
      expect(summary?.stepCount).toBe(60);
      expect(summary?.steps.map((s) => s.id)).toEqual(record.steps.map((s) => s.id));
      expect(summary?.steps.every((s) => s.output === undefined && s.outputTruncated)).toBe(true);
      const steps: ExecutionRecord["steps"] = [];
      let cursor: string | undefined;
      do {
        const page = await store.getSteps(tenant, record.executionId, { cursor, limit: 100 });
        steps.push(...page!.steps);
        cursor = page!.cursor;
      } while (cursor);
      expect(steps).toEqual(record.steps);
    });

    it("serves a short run's steps from its record, and answers only the execution's tenant", async () => {
      const tenant = uniqueTenant("short");
      const record = longExecution(30, { tenant });
      await history.putExecution(record);
      expect(await history.getExecution(tenant, record.executionId)).toEqual(record);
      const first = await history.getSteps(tenant, record.executionId, { limit: 20 });
      expect(first?.steps).toEqual(record.steps.slice(0, 20));
      const rest = await history.getSteps(tenant, record.executionId, { cursor: first?.cursor });
      expect(rest).toEqual({ steps: record.steps.slice(20), total: 30 });

      expect(await history.getSteps(uniqueTenant("other"), record.executionId)).toBeUndefined();
      expect(await history.getSteps(tenant, "no-such-execution")).toBeUndefined();
    });

    it("rejects a malformed or foreign cursor and a bad limit with codes", async () => {
      const tenant = uniqueTenant("stepcursor");
      const a = longExecution(200, { tenant });
      const b = longExecution(3_000, { tenant });
      await Promise.all([history.putExecution(a), history.putExecution(b)]);
      const codeOf = (executionId: string, query: { cursor?: string; limit?: number }) =>
        history.getSteps(tenant, executionId, query).then(
          () => "accepted",
          (error) => (error instanceof MovaError ? error.code : String(error)),
        );
      const fromB = (await history.getSteps(tenant, b.executionId))!.cursor!;
      const fromA = (await history.getSteps(tenant, a.executionId))!.cursor!;
      expect(await codeOf(b.executionId, { cursor: fromB })).toBe("accepted");
      expect(await codeOf(a.executionId, { cursor: fromB })).toBe("invalid_cursor");
      expect(await codeOf(b.executionId, { cursor: fromA })).toBe("invalid_cursor");
      const forged = (fields: object) => Buffer.from(JSON.stringify(fields)).toString("base64url");
      expect(await codeOf(b.executionId, { cursor: forged({ e: b.executionId, i: 3_000, p: 29 }) })).toBe(
        "invalid_cursor",
      );
      expect(await codeOf(b.executionId, { cursor: forged({ e: b.executionId, i: 30, p: 5 }) })).toBe(
        "invalid_cursor",
      );
      expect(await codeOf(b.executionId, { cursor: forged({ e: b.executionId, i: 130, p: 1 }) })).toBe(
        "accepted",
      );
      expect(await codeOf(b.executionId, { cursor: "not a cursor!" })).toBe("invalid_cursor");
      expect(await codeOf(b.executionId, { cursor: forged([1]) })).toBe("invalid_cursor");
      expect(await codeOf(b.executionId, { limit: 0 })).toBe("invalid_limit");
      expect(await codeOf(b.executionId, { limit: 101 })).toBe("invalid_limit");
    });

    it("refuses a summary in place of the whole run", async () => {
      const tenant = uniqueTenant("summary");
      const record = longExecution(3_000, { tenant });
      await history.putExecution(record);
      const summary = (await history.getExecution(tenant, record.executionId))!;
      const error = await history
        .putExecution({ ...summary, executionId: "copy" })
        .catch((e: unknown) => e as MovaError);
      expect(error).toMatchObject({ code: "invalid_execution_record" });
    });
  });

  it("links a child to its parent, lists children a page at a time, and writes a lost link again", async () => {
    const tenant = uniqueTenant("children");
    const parent = sampleExecution({ tenant });
    await history.putExecution(parent);
    const child = (step: string, visit: number, index?: number) =>
      sampleExecution({
        tenant,
        executionId: `${parent.executionId}~${step}.${visit}${index === undefined ? "" : `~${index}`}`,
        protocol: "lookup",
        parentExecutionId: parent.executionId,
        parentStep: step,
        parentVisit: visit,
        ...(index !== undefined ? { itemIndex: index } : {}),
      });
    // Written out of order: listed by step, visit, then item (10 after 9, not after 1).
    const children = [
      child("each", 1, 10),
      child("each", 1, 9),
      child("ask", 2),
      child("ask", 1),
      child("each", 1, 1),
    ];
    for (const record of children) await history.putExecution(record);
    expect(await history.getExecution(tenant, children[0]!.executionId)).toEqual(children[0]);

    const ids: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await history.listChildren(tenant, parent.executionId, {
        limit: 2,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      ids.push(...page!.items.map((item) => item.executionId));
      cursor = page!.cursor;
      pages++;
    } while (cursor !== undefined);
    const suffixes = ids.map((id) => id.slice(parent.executionId.length));
    expect(suffixes).toEqual(["~ask.1", "~ask.2", "~each.1~1", "~each.1~9", "~each.1~10"]);
    expect(pages).toBeGreaterThanOrEqual(3);
    const first = (await history.listChildren(tenant, parent.executionId, { limit: 1 }))!;
    expect(first.items[0]).toEqual({
      executionId: `${parent.executionId}~ask.1`,
      protocol: "lookup",
      status: "completed",
      startedAt: children[3]!.startedAt,
      finishedAt: children[3]!.finishedAt,
      durationMs: children[3]!.durationMs,
      parentStep: "ask",
      parentVisit: 1,
    });
    // Another tenant, another execution's cursor, an unknown parent.
    expect(await history.listChildren(uniqueTenant("other"), parent.executionId)).toBeUndefined();
    expect(await history.listChildren(tenant, "ex_none")).toBeUndefined();
    await expect(
      history.listChildren(tenant, children[0]!.executionId, { cursor: first.cursor! }),
    ).rejects.toMatchObject({ code: "invalid_cursor" });
    expect(await history.listChildren(tenant, children[0]!.executionId)).toEqual({ items: [] });

    // A link lost (a write that stopped between the child and its link): the next try of the
    // child, even refused, writes it again from the stored child.
    const lost = children[2]!;
    await client.send(
      new DeleteItemCommand({
        TableName: stack.env.EXECUTIONS_TABLE,
        Key: { pk: { S: `exec#${tenant}#${parent.executionId}` }, sk: { S: "child#ask#000002#-" } },
      }),
    );
    const listed = async () =>
      (await history.listChildren(tenant, parent.executionId, { limit: 100 }))!.items.map(
        (item) => item.status,
      );
    expect(await listed()).toHaveLength(4);
    await expect(history.putExecution({ ...lost, status: "failed" })).rejects.toMatchObject({
      code: "execution_already_finished",
    });
    expect(await listed()).toEqual(["completed", "completed", "completed", "completed", "completed"]);
  });

  it("reports an unreachable DynamoDB as StoreUnavailableError history_unavailable", async () => {
    const dead = createDynamoDbClient(loadConfig(stack.env), {
      env: { ...stack.env, AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9" },
      maxAttempts: 1,
    });
    const store = createDynamoHistoryStore({
      client: dead,
      table: "t",
      retentionDays: 1,
      outputMaxBytes: 64,
    });
    const error = await store.getExecution("acme", "x").catch((e) => e);
    dead.destroy();
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.code).toBe("history_unavailable");
  });
});
