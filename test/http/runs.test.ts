/**
 * Durable runs on the local stack: a run longer than SYNC_BUDGET_MS answers 202 and the runner
 * (driven by the stack's SQS poller, one round at a time) finishes it; Prefer: respond-async;
 * two runners racing on one run; a finished run's duplicate message; a finished checkpoint
 * whose history write never happened.
 */
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { loadConfig } from "../../lib/config.ts";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import { startQueuePoller } from "../../infra/local/sqs-poller.ts";
import { advanceRun } from "../../lib/engine/engine.ts";
import { createDocumentLoader } from "../../lib/services/document-loader.ts";
import { type ApiFixture, quietLogger, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;
let runner: ReturnType<typeof buildRunnerHandler>;

/** Three slow tool calls: longer than the 300 ms inline budget, so the runner finishes the run. */
const slowDocument = (toolsUrl: string) => ({
  version: "2.2",
  protocols: [
    {
      name: "slow",
      steps: [
        { id: "one", action: "tool_api", tool_api_id: "slow", output: "a" },
        { id: "two", action: "tool_api", tool_api_id: "slow", output: "b" },
        { id: "three", action: "tool_api", tool_api_id: "slow", output: "c" },
        { id: "end", action: "end", response_template: "done {a.n} {b.n} {c.n}" },
      ],
    },
  ],
  tools: [{ id: "slow", endpoint: `${toolsUrl}/slow`, method: "POST" }],
});

beforeAll(async () => {
  api = await startApiFixture({ SYNC_BUDGET_MS: "300", RUNNER_MARGIN_MS: "0" });
  expect((await api.call("PUT", "/documents/slow", { body: slowDocument(api.tools.url) })).status).toBe(201);
  api.tools.route("POST", "/slow", { body: { n: 1 }, delayMs: 250 });
  runner = buildRunnerHandler(api.config, { env: api.env, logger: quietLogger() });
});
afterAll(async () => {
  await api?.close();
});

const toolCalls = () => api.tools.requests.filter((r) => r.path === "/slow");

/** One poller round at a time on the runs queue, into the runner; failed messages come back at once. */
function runsPoller(handler = runner) {
  const sqs = createSqsClient(api.config, { env: api.env });
  return startQueuePoller({
    sqs,
    region: api.config.AWS_REGION,
    queueUrls: [api.env.RUNS_QUEUE_URL!],
    handler: (event: SQSEvent) =>
      handler(event, { awsRequestId: "test", getRemainingTimeInMillis: () => 60_000 }),
    waitSeconds: 0,
    retryDelaySeconds: 0,
    loop: false,
  });
}

async function untilFinished(executionId: string, poll: () => Promise<boolean>) {
  for (let round = 0; round < 40; round++) {
    const shown = await api.call("GET", `/executions/${executionId}`);
    if (shown.body.status !== "running") return shown;
    await poll();
  }
  throw new Error(`run ${executionId} did not finish`);
}

describe("durable runs", () => {
  it("answers 202 with Location past SYNC_BUDGET_MS; the runner completes it once and publishes it once", async () => {
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    const before = toolCalls().length;
    const response = await api.call("POST", "/executions", { body: { document: "slow", protocol: "slow" } });
    expect(response.status).toBe(202);
    const { executionId } = response.body;
    expect(response.body).toEqual({ executionId, status: "running" });
    expect(response.headers.get("location")).toBe(`/executions/${executionId}`);

    const progress = await api.call("GET", `/executions/${executionId}`);
    expect(progress.body.status).toBe("running");
    expect(progress.body.progress.stepCount).toBeGreaterThanOrEqual(1);
    expect(progress.body.analysis).toBe("waiting");
    // Nothing running is ever published.
    expect(await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0)).toHaveLength(0);

    const poller = runsPoller();
    const done = await untilFinished(executionId, poller.pollOnce);
    await poller.stop();
    expect(done.body).toMatchObject({ status: "completed", output: "done 1 1 1", analysis: "published" });
    expect(done.body.steps.map((s: { id: string }) => s.id)).toEqual(["one", "two", "three", "end"]);
    expect(done.body.path).toEqual(["one", "two", "three", "end"]);
    // Every step ran once: three tool calls, each with its own Idempotency-Key.
    const calls = toolCalls().slice(before);
    expect(calls).toHaveLength(3);
    expect(new Set(calls.map((c) => c.headers["idempotency-key"])).size).toBe(3);
    const events = await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    expect(events.filter((m) => m.Body?.includes(executionId))).toHaveLength(1);
  });

  it("Prefer: respond-async answers 202 at once; an Idempotency-Key replay gives the same 202", async () => {
    const before = toolCalls().length;
    const headers = { prefer: "respond-async", "idempotency-key": `async-${Date.now()}` };
    const body = { document: "slow", protocol: "slow" };
    const first = await api.call("POST", "/executions", { body, headers });
    expect(first.status).toBe(202);
    expect(toolCalls().length).toBe(before);
    const { executionId } = first.body;
    const again = await api.call("POST", "/executions", { body, headers });
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("location")).toBe(`/executions/${executionId}`);
    expect(again.headers.get("idempotent-replayed")).toBe("true");

    const poller = runsPoller();
    const done = await untilFinished(executionId, poller.pollOnce);
    await poller.stop();
    expect(done.body.status).toBe("completed");
    expect(toolCalls().length - before).toBe(3);
  });

  it("two runners racing on one run: one advances it, the other's message is retried; every step runs once", async () => {
    const before = toolCalls().length;
    const response = await api.call("POST", "/executions", {
      body: { document: "slow", protocol: "slow" },
      headers: { prefer: "respond-async" },
    });
    const { executionId } = response.body;
    const event = (id: string): SQSEvent =>
      ({
        Records: [{ messageId: id, body: JSON.stringify({ tenant: "dev", executionId }) }],
      }) as unknown as SQSEvent;
    const context = { awsRequestId: "race", getRemainingTimeInMillis: () => 60_000 };
    const [a, b] = await Promise.all([runner(event("a"), context), runner(event("b"), context)]);
    const failed = [...a.batchItemFailures, ...b.batchItemFailures].map((f) => f.itemIdentifier);
    expect(failed).toHaveLength(1);
    const done = await api.call("GET", `/executions/${executionId}`);
    expect(done.body.status).toBe("completed");
    // The retried message finds the run finished: it is acknowledged and changes nothing.
    const retried = await runner(event(failed[0]!), context);
    expect(retried.batchItemFailures).toEqual([]);
    expect(toolCalls().length - before).toBe(3);
    // The queue's own message (from respond-async) is a duplicate now too.
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    const poller = runsPoller();
    while (await poller.pollOnce()) {
      // drain
    }
    await poller.stop();
    expect(toolCalls().length - before).toBe(3);
    const after = await api.call("GET", `/executions/${executionId}`);
    expect(after.body.finishedAt).toBe(done.body.finishedAt);
    expect(await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0)).toHaveLength(0);
  });

  it("a runner that died between the finished checkpoint and the history write: the next delivery records and publishes it once", async () => {
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    const response = await api.call("POST", "/executions", {
      body: { document: "slow", protocol: "slow" },
      headers: { prefer: "respond-async" },
    });
    const { executionId } = response.body;
    await api.drainQueue(api.env.RUNS_QUEUE_URL!, 0);
    // What the dying runner did: every step, each checkpointed, the last one finished; then it
    // died before its history write.
    const document = await createDocumentLoader(api.deps.documents).load("dev", "slow");
    let stored = (await api.deps.checkpoints.get("dev", executionId))!;
    const before = toolCalls().length;
    const result = await advanceRun({
      document: document.parsed,
      ports: { llm: api.deps.llm, tools: api.deps.tools, clock: api.deps.clock, secrets: api.deps.secrets },
      state: stored.state,
      executionId,
      checkpoint: async (state) => {
        const version = await api.deps.checkpoints.write("dev", executionId, stored.version, state);
        stored = { ...stored, version, state };
      },
    });
    expect(result.status).toBe("completed");
    expect((await api.deps.checkpoints.get("dev", executionId))?.state.status).toBe("completed");
    expect((await api.call("GET", `/executions/${executionId}`)).body.status).toBe("running");
    const calls = toolCalls().length - before;
    expect(calls).toBe(3);

    const event = (id: string): SQSEvent =>
      ({
        Records: [{ messageId: id, body: JSON.stringify({ tenant: "dev", executionId }) }],
      }) as unknown as SQSEvent;
    const context = { awsRequestId: "redelivery", getRemainingTimeInMillis: () => 60_000 };
    expect((await runner(event("first"), context)).batchItemFailures).toEqual([]);
    const done = await api.call("GET", `/executions/${executionId}`);
    expect(done.body).toMatchObject({ status: "completed", output: "done 1 1 1", analysis: "published" });
    expect(done.body.path).toEqual(["one", "two", "three", "end"]);
    // Recorded and published once; nothing ran again.
    expect(
      (await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0)).filter((m) => m.Body?.includes(executionId)),
    ).toHaveLength(1);
    expect((await runner(event("again"), context)).batchItemFailures).toEqual([]);
    const after = await api.call("GET", `/executions/${executionId}`);
    expect(after.body.finishedAt).toBe(done.body.finishedAt);
    expect(await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0)).toHaveLength(0);
    expect(toolCalls().length - before).toBe(calls);
  });

  it("DynamoDB unreachable: the runner fails the message having run nothing; a later delivery completes the run", async () => {
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    const response = await api.call("POST", "/executions", {
      body: { document: "slow", protocol: "slow" },
      headers: { prefer: "respond-async" },
    });
    const { executionId } = response.body;
    await api.drainQueue(api.env.RUNS_QUEUE_URL!, 0);
    const before = toolCalls().length;
    const deadEnv = { ...api.env, AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9" };
    const deadRunner = buildRunnerHandler(loadConfig(deadEnv), { env: deadEnv, logger: quietLogger() });
    const event = {
      Records: [{ messageId: "dead", body: JSON.stringify({ tenant: "dev", executionId }) }],
    } as unknown as SQSEvent;
    const context = { awsRequestId: "dead-dynamo", getRemainingTimeInMillis: () => 60_000 };
    const failed = await deadRunner(event, context);
    expect(failed.batchItemFailures).toEqual([{ itemIdentifier: "dead" }]);
    expect(toolCalls().length).toBe(before);
    const stored = await api.deps.checkpoints.get("dev", executionId);
    expect(stored?.state).toMatchObject({ status: "running", stepCount: 0 });
    expect(stored?.lease).toBeUndefined();

    expect((await runner(event, context)).batchItemFailures).toEqual([]);
    const done = await api.call("GET", `/executions/${executionId}`);
    expect(done.body).toMatchObject({ status: "completed", output: "done 1 1 1" });
    expect(toolCalls().length - before).toBe(3);
    const events = await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    expect(events.filter((m) => m.Body?.includes(executionId))).toHaveLength(1);
  }, 60_000);

  it("acknowledges a message for an unknown run", async () => {
    const sqs = createSqsClient(api.config, { env: api.env });
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: api.env.RUNS_QUEUE_URL!,
        MessageBody: JSON.stringify({ tenant: "dev", executionId: "ex_unknown" }),
      }),
    );
    const poller = runsPoller();
    expect(await poller.pollOnce()).toBe(true);
    expect(await poller.pollOnce()).toBe(false);
    await poller.stop();
  });
});
