/**
 * POST /executions, the history record, the per-protocol query with pagination,
 * idempotency, runs attached to a session, a publish failure, and a run of 3,000 steps.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecutionEventSchema } from "../../lib/core/execution-event.ts";
import { SQS_MAX_MESSAGE_BYTES } from "../../lib/adapters/sqs/publisher.ts";
import type { SQSEvent } from "aws-lambda";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import {
  type ApiFixture,
  invoke,
  quietLogger,
  shopDocument,
  startApiFixture,
  v2Event,
} from "../support/api-fixture.ts";

let api: ApiFixture;

beforeAll(async () => {
  api = await startApiFixture();
  for (const name of ["shop", "paging"]) {
    expect((await api.call("PUT", `/documents/${name}`, { body: shopDocument(api.tools.url) })).status).toBe(
      201,
    );
  }
  api.tools.route("GET", "/stock/apple", { body: { available: 7 } });
});
afterAll(async () => {
  await api?.close();
});

const execute = (body: Record<string, unknown>, headers: Record<string, string> = {}, key?: string) =>
  api.call("POST", "/executions", { body, headers, ...(key ? { key } : {}) });

describe("POST /executions", () => {
  it("runs a protocol, returns its result, keeps it in history and publishes it", async () => {
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    const response = await execute({ document: "shop", protocol: "echo", variables: { word: "hi" } });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      status: "completed",
      protocol: "echo",
      output: "reply: Say hi",
      path: ["say", "end"],
      analysis: "published",
    });
    expect(response.body.suspended).toBeUndefined();
    const { executionId } = response.body;

    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.status).toBe(200);
    expect(record.body).toMatchObject({ executionId, tenant: "dev", trigger: "api", status: "completed" });
    expect(record.body.steps[0]).toMatchObject({
      id: "say",
      action: "prompt",
      status: "succeeded",
      attempts: 1,
    });

    const messages = await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!);
    expect(messages.map((m) => JSON.parse(m.Body!).execution.executionId)).toContain(executionId);
  });

  it("answers 422 unknown_protocol, 404 for an unknown document, 404 for an unknown execution", async () => {
    const unknown = await execute({ document: "shop", protocol: "nope" });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.code).toBe("unknown_protocol");
    expect((await execute({ document: "missing", protocol: "echo" })).status).toBe(404);
    expect((await api.call("GET", "/executions/ex_missing")).status).toBe(404);
  });

  it("returns a failed run as a result (200) and sends its event to the priority queue", async () => {
    await api.drainQueue(api.env.ANALYSIS_PRIORITY_QUEUE_URL!, 0);
    const response = await execute({ document: "shop", protocol: "broken" });
    expect(response.status).toBe(200);
    expect(response.body.status).toBe("failed");
    expect(response.body.error.code).toBeTruthy();
    const [priority, normal] = await Promise.all([
      api.drainQueue(api.env.ANALYSIS_PRIORITY_QUEUE_URL!),
      api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0),
    ]);
    const ids = (list: typeof priority) => list.map((m) => JSON.parse(m.Body!).execution.executionId);
    expect([...ids(priority), ...ids(normal)]).toContain(response.body.executionId);
  });

  it("attaches a waiting run to a session, which the session's next message resumes", async () => {
    const session = await api.call("POST", "/sessions", { body: { document: "shop", userId: "u1" } });
    const { sessionId } = session.body;
    const started = await execute({ document: "shop", protocol: "order_flow", sessionId });
    expect(started.body).toMatchObject({
      status: "waiting_input",
      waitingFor: { stepId: "ask_item", variable: "item" },
      analysis: "waiting",
    });
    const resumed = await api.call("POST", `/sessions/${sessionId}/messages`, { body: { text: "apple" } });
    expect(resumed.body).toMatchObject({ status: "waiting_input", executionId: started.body.executionId });
    expect(resumed.body.replies).toContain("How many apple?");
  });
});

describe("GET /documents/{name}/protocols/{protocol}/executions", () => {
  it("pages through the executions newest first, filters by status and rejects bad parameters", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await execute({ document: "paging", protocol: "echo", variables: { word: `w${i}` } });
      ids.push(response.body.executionId);
    }
    const seen: Array<{ executionId: string; finishedAt: string }> = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const query = new URLSearchParams({ limit: "2", ...(cursor ? { cursor } : {}) });
      const page = await api.call("GET", `/documents/paging/protocols/echo/executions?${query}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items);
      cursor = page.body.cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen.map((r) => r.executionId).sort()).toEqual([...ids].sort());
    expect(pages).toBeGreaterThanOrEqual(3);
    const times = seen.map((r) => r.finishedAt);
    expect(times).toEqual([...times].sort().reverse());

    const failedOnly = await api.call("GET", "/documents/paging/protocols/echo/executions?status=failed");
    expect(failedOnly.body.items).toEqual([]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const none = await api.call(
      "GET",
      `/documents/paging/protocols/echo/executions?from=${encodeURIComponent(future)}`,
    );
    expect(none.body.items).toEqual([]);

    for (const bad of [
      "limit=0",
      "limit=abc",
      "from=yesterday",
      "status=weird",
      "cursor=%%%garbage",
      "color=red",
    ]) {
      const response = await api.call("GET", `/documents/paging/protocols/echo/executions?${bad}`);
      expect(response.status, bad).toBe(400);
    }
  });
});

describe("Idempotency-Key", () => {
  it("returns the first result to a retry without running again", async () => {
    const body = { document: "shop", protocol: "echo", variables: { word: "once" } };
    const first = await execute(body, { "idempotency-key": "key-1" });
    expect(first.status).toBe(200);
    const llmCalls = api.llm.completions().length;
    const retry = await execute(
      { variables: { word: "once" }, protocol: "echo", document: "shop" },
      { "idempotency-key": "key-1" },
    );
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(api.llm.completions().length).toBe(llmCalls);

    const reused = await execute({ ...body, variables: { word: "other" } }, { "idempotency-key": "key-1" });
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe("idempotency_key_reused");

    // Keys belong to a tenant: the same key elsewhere is a new request.
    await api.call("PUT", "/documents/shop", { key: api.acmeKey, body: shopDocument(api.tools.url) });
    const acme = await execute(body, { "idempotency-key": "key-1" }, api.acmeKey);
    expect(acme.status).toBe(200);
    expect(acme.body.executionId).not.toBe(first.body.executionId);
    const acmeRetry = await execute(body, { "idempotency-key": "key-1" }, api.acmeKey);
    expect(acmeRetry.headers.get("idempotent-replayed")).toBe("true");
    expect(acmeRetry.body.executionId).toBe(acme.body.executionId);
    expect((await execute(body, { "idempotency-key": "key-1" })).body.executionId).toBe(
      first.body.executionId,
    );
  });

  it("answers 409 to a duplicate while the first is running, and lets a failed request be retried", async () => {
    api.llm.setDelay(400);
    const body = { document: "shop", protocol: "echo", variables: { word: "slow" } };
    const [a, b] = await Promise.all([
      execute(body, { "idempotency-key": "key-2" }),
      new Promise((resolve) => setTimeout(resolve, 100)).then(() =>
        execute(body, { "idempotency-key": "key-2" }),
      ),
    ]);
    api.llm.setDelay(0);
    expect(a.status).toBe(200);
    expect(b.status).toBe(409);
    expect(b.body.error.code).toBe("idempotency_in_progress");
    const later = await execute(body, { "idempotency-key": "key-2" });
    expect(later.body.executionId).toBe(a.body.executionId);

    const missing = await execute({ document: "missing", protocol: "echo" }, { "idempotency-key": "key-3" });
    expect(missing.status).toBe(404);
    await api.call("PUT", "/documents/missing", { body: shopDocument(api.tools.url) });
    const retried = await execute({ document: "missing", protocol: "echo" }, { "idempotency-key": "key-3" });
    expect(retried.status).toBe(200);
  });
});

describe("a publish failure", () => {
  it("still returns the result and saves the execution marked analysis: pending", async () => {
    const missingQueue = `${api.env.AWS_ENDPOINT_URL_SQS}/000000000000/no-such-queue`;
    const handler = api.handlerWith({
      ANALYSIS_QUEUE_URL: missingQueue,
      ANALYSIS_PRIORITY_QUEUE_URL: missingQueue,
    });
    const response = await invoke(
      handler,
      v2Event("POST", "/executions", {
        headers: { authorization: `Bearer ${api.devKey}` },
        body: { document: "shop", protocol: "echo", variables: { word: "lost?" } },
      }),
    );
    expect(response.statusCode).toBe(200);
    expect(response.json).toMatchObject({ status: "completed", analysis: "pending" });
    const record = await api.call("GET", `/executions/${response.json.executionId}`);
    expect(record.status).toBe(200);
    expect(record.body.analysis).toBe("pending");
  });
});

describe("a run of 3,000 steps", () => {
  /** A counter loop: a tool call that adds one, and a condition that loops until 1,500. */
  const loopDocument = (toolsUrl: string) => ({
    version: "2.2",
    protocols: [
      {
        name: "count_loop",
        max_steps: 100_000,
        steps: [
          { id: "count", action: "tool_api", tool_api_id: "counter", output: "counter" },
          {
            id: "check",
            action: "condition",
            conditions: [{ variable: "counter.n", operator: "less_than", value: 1_500 }],
            next_step: "count",
            else_step: "done",
          },
          { id: "done", action: "end", response_template: "counted to {counter.n}" },
        ],
      },
    ],
    tools: [
      { id: "counter", endpoint: `${toolsUrl}/count`, method: "GET", parameters: { n: "{counter.n}" } },
    ],
  });

  it("answers with its summary and first steps, keeps every step readable in order, and publishes it", async () => {
    expect((await api.call("PUT", "/documents/loop", { body: loopDocument(api.tools.url) })).status).toBe(
      201,
    );
    api.tools.route("GET", "/count", (request) => ({ body: { n: Number(request.query.n) + 1 } }));
    const counted = () => api.tools.requests.filter((r) => r.path === "/count").length;
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);

    const body = { document: "loop", protocol: "count_loop", variables: { counter: { n: 0 } } };
    const response = await execute(body, { "idempotency-key": "long-run" });
    // It finishes inline within SYNC_BUDGET_MS on a quiet machine (200); on a loaded one the
    // runner finishes it (202): either way the same record comes out.
    expect([200, 202]).toContain(response.status);
    const { executionId } = response.body;
    if (response.status === 202) {
      const runner = buildRunnerHandler(api.config, { env: api.env, logger: quietLogger() });
      const message = {
        Records: [{ messageId: "loop", body: JSON.stringify({ tenant: "dev", executionId }) }],
      } as unknown as SQSEvent;
      let shown = await api.call("GET", `/executions/${executionId}`);
      while (shown.body.status === "running") {
        const result = await runner(message, {
          awsRequestId: "loop",
          getRemainingTimeInMillis: () => 60_000,
        });
        expect(result.batchItemFailures).toEqual([]);
        shown = await api.call("GET", `/executions/${executionId}`);
      }
    }
    const finished = response.status === 200 ? response : await api.call("GET", `/executions/${executionId}`);
    expect(finished.body).toMatchObject({
      status: "completed",
      output: "counted to 1500",
      analysis: "published",
      stepCount: 3_001,
      pathLength: 3_001,
    });
    expect(counted()).toBe(1_500);
    const { stepsCursor } = finished.body;
    expect(finished.body.steps).toHaveLength(25);
    expect(finished.body.path.length).toBeLessThanOrEqual(500);
    expect(typeof stepsCursor).toBe("string");
    // A retry gets the same answer and calls no tool again.
    const retry = await execute(body, { "idempotency-key": "long-run" });
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.body).toEqual(response.body);
    expect(counted()).toBe(1_500);

    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.status).toBe(200);
    expect(record.body).toMatchObject({ executionId, status: "completed", stepCount: 3_001, stepsCursor });
    expect(record.body.steps).toEqual(finished.body.steps);

    const steps: Array<{ id: string; output?: { n: number }; startedAt: string }> = [...record.body.steps];
    let cursor: string | undefined = stepsCursor;
    while (cursor) {
      const page = await api.call(
        "GET",
        `/executions/${executionId}/steps?${new URLSearchParams({ cursor, limit: "100" })}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.total).toBe(3_001);
      expect(page.body.steps.length).toBeLessThanOrEqual(100);
      steps.push(...page.body.steps);
      cursor = page.body.cursor;
    }
    // Every step once, in run order: count and check in turns, the counter rising by one, then the end.
    expect(steps).toHaveLength(3_001);
    expect(steps.map((step) => step.id)).toEqual([
      ...Array.from({ length: 1_500 }, () => ["count", "check"]).flat(),
      "done",
    ]);
    expect(steps.filter((step) => step.id === "count").map((step) => step.output?.n)).toEqual(
      Array.from({ length: 1_500 }, (_, n) => n + 1),
    );
    const times = steps.map((step) => step.startedAt);
    expect(times).toEqual([...times].sort());

    // The event reached the analysis queue, within SQS's limit, as the run's summary.
    const messages = await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!);
    const message = messages.find((m) => JSON.parse(m.Body!).execution.executionId === executionId);
    expect(message).toBeDefined();
    expect(Buffer.byteLength(message!.Body!)).toBeLessThan(SQS_MAX_MESSAGE_BYTES);
    const { execution } = ExecutionEventSchema.parse(JSON.parse(message!.Body!));
    expect(execution).toMatchObject({ status: "completed", stepCount: 3_001, pathLength: 3_001 });
    expect(execution.steps.length).toBeGreaterThan(1_000);
  });

  it("records a run that reaches max_steps at its limit of 100,000", { timeout: 600_000 }, async () => {
    const spin = {
      version: "2.2",
      protocols: [
        {
          name: "spin",
          max_steps: 100_000,
          steps: [
            {
              id: "again",
              action: "condition",
              conditions: [{ variable: "go", operator: "equals", value: true }],
              next_step: "again",
              else_step: "stop",
            },
            { id: "stop", action: "end" },
          ],
        },
      ],
    };
    expect((await api.call("PUT", "/documents/spin", { body: spin })).status).toBe(201);
    await api.drainQueue(api.env.ANALYSIS_PRIORITY_QUEUE_URL!, 0);
    // A checkpoint after every step: 100,000 steps outlast SYNC_BUDGET_MS; the runner ends the run.
    const response = await execute({ document: "spin", protocol: "spin", variables: { go: true } });
    expect(response.status).toBe(202);
    const runner = buildRunnerHandler(api.config, { env: api.env, logger: quietLogger() });
    const message = {
      Records: [
        { messageId: "m", body: JSON.stringify({ tenant: "dev", executionId: response.body.executionId }) },
      ],
    } as unknown as SQSEvent;
    let shown = await api.call("GET", `/executions/${response.body.executionId}`);
    while (shown.body.status === "running") {
      const result = await runner(message, { awsRequestId: "spin", getRemainingTimeInMillis: () => 60_000 });
      expect(result.batchItemFailures).toEqual([]);
      shown = await api.call("GET", `/executions/${response.body.executionId}`);
    }
    expect(shown.body).toMatchObject({
      status: "failed",
      error: { code: "max_steps" },
      stepCount: 100_000,
      pathLength: 100_000,
      analysis: "published",
    });
    const { executionId, stepsCursor } = shown.body;
    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body).toMatchObject({ stepCount: 100_000, failedStepId: "again", stepsCursor });
    const next = await api.call("GET", `/executions/${executionId}/steps?cursor=${stepsCursor}&limit=100`);
    expect(next.body.steps).toHaveLength(100);
    expect(next.body.total).toBe(100_000);
    const messages = await api.drainQueue(api.env.ANALYSIS_PRIORITY_QUEUE_URL!);
    expect(messages.map((m) => JSON.parse(m.Body!).execution.executionId)).toContain(executionId);
  });

  it("reads a tenant's steps only, and answers 400 to a bad cursor or limit", async () => {
    const response = await execute({
      document: "loop",
      protocol: "count_loop",
      variables: { counter: { n: 1_450 } },
    });
    expect(response.body).toMatchObject({ status: "completed", output: "counted to 1500" });
    const { executionId } = response.body;
    // 101 steps: all in the answer, none left to read.
    expect(response.body.steps).toHaveLength(101);
    expect(response.body.stepsCursor).toBeUndefined();
    const first = await api.call("GET", `/executions/${executionId}/steps?limit=60`);
    expect(first.body.steps).toEqual(response.body.steps.slice(0, 60));
    const rest = await api.call(
      "GET",
      `/executions/${executionId}/steps?cursor=${first.body.cursor}&limit=100`,
    );
    expect(rest.body).toEqual({ steps: response.body.steps.slice(60), total: 101 });

    expect((await api.call("GET", `/executions/${executionId}/steps`, { key: api.acmeKey })).status).toBe(
      404,
    );
    expect((await api.call("GET", "/executions/ex_missing/steps")).status).toBe(404);
    for (const bad of ["cursor=%%%garbage", "cursor=e30", "limit=0", "limit=101", "limit=x", "color=red"]) {
      const answer = await api.call("GET", `/executions/${executionId}/steps?${bad}`);
      expect(answer.status, bad).toBe(400);
    }
    const other = await execute({
      document: "loop",
      protocol: "count_loop",
      variables: { counter: { n: 1_490 } },
    });
    const foreign = await api.call(
      "GET",
      `/executions/${other.body.executionId}/steps?cursor=${first.body.cursor}`,
    );
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.code).toBe("invalid_cursor");
  });
});
