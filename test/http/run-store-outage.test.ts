/**
 * Redis unreachable in the middle of a run: a private redis-server behind the local stack's
 * bridge is stopped (SIGSTOP) while a step's tool call is in flight, so the checkpoint write
 * after it times out. The run pauses: the answer is 202, the record `running` with the steps
 * whose checkpoint was written, the run on the runs queue. Redis comes back (SIGCONT) and the
 * runner completes the run from the last checkpoint: never lost, never a step's record twice,
 * the step whose write failed at most twice with one Idempotency-Key, published once.
 */
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import { startQueuePoller } from "../../infra/local/sqs-poller.ts";
import { type ApiFixture, quietLogger, startApiFixture } from "../support/api-fixture.ts";
import { findRedisServer, type RedisProcess, startRedisOnFreePort } from "../support/redis-process.ts";
import { threeToolDocument } from "../support/three-tool-document.ts";

const redisBinary = findRedisServer();
let redis: RedisProcess | undefined;
let api: ApiFixture | undefined;

const outageDocument = (toolsUrl: string) => threeToolDocument("outage", toolsUrl);

beforeAll(async () => {
  if (!redisBinary) return;
  redis = await startRedisOnFreePort(redisBinary);
  api = await startApiFixture({ SYNC_BUDGET_MS: "60000" }, { redisUrl: redis.url, noRedisServer: true });
  expect((await api.call("PUT", "/documents/outage", { body: outageDocument(api.tools.url) })).status).toBe(
    201,
  );
  api.tools.route("POST", "/outage-a", { body: { n: 1 } });
  api.tools.route("POST", "/outage-c", { body: { n: 3 } });
});
afterAll(async () => {
  redis?.child.kill("SIGCONT");
  await api?.close().catch(() => undefined);
  await redis?.kill().catch(() => undefined);
});

const calls = (path: string) => api!.tools.requests.filter((r) => r.path === path);

describe.skipIf(!redisBinary)("Redis unreachable mid-run", () => {
  it("the run pauses (202, running, on the runs queue) and the runner completes it once Redis is back", async () => {
    const fixture = api!;
    await fixture.drainQueue(fixture.env.ANALYSIS_QUEUE_URL!, 0);
    await fixture.drainQueue(fixture.env.RUNS_QUEUE_URL!, 0);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let bCalls = 0;
    fixture.tools.route("POST", "/outage-b", async () => {
      bCalls += 1;
      if (bCalls === 1) await held;
      return { body: { n: 2 } };
    });

    const answer = fixture.call("POST", "/executions", { body: { document: "outage", protocol: "outage" } });
    for (let n = 0; n < 600 && calls("/outage-b").length === 0; n++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(calls("/outage-b")).toHaveLength(1);
    // Step two's tool call is in flight: Redis stops answering, then the call returns.
    redis!.child.kill("SIGSTOP");
    release();
    const paused = await answer;
    expect(paused.status).toBe(202);
    const { executionId } = paused.body;
    const record = await fixture.call("GET", `/executions/${executionId}`);
    expect(record.status).toBe(200);
    expect(record.body.status).toBe("running");
    // Only what the last written checkpoint covers is recorded: step two runs again.
    expect(record.body.path).toEqual(["one"]);
    expect(record.body.steps.map((s: { id: string }) => s.id)).toEqual(["one"]);

    redis!.child.kill("SIGCONT");
    const runner = buildRunnerHandler(fixture.config, { env: fixture.env, logger: quietLogger() });
    const poller = startQueuePoller({
      sqs: createSqsClient(fixture.config, { env: fixture.env }),
      region: fixture.config.AWS_REGION,
      queueUrls: [fixture.env.RUNS_QUEUE_URL!],
      handler: (event: SQSEvent) =>
        runner(event, { awsRequestId: "outage", getRemainingTimeInMillis: () => 60_000 }),
      waitSeconds: 1,
      retryDelaySeconds: 0,
      loop: false,
    });
    let done = record;
    for (let round = 0; round < 40 && done.body.status === "running"; round++) {
      await poller.pollOnce();
      done = await fixture.call("GET", `/executions/${executionId}`);
    }
    await poller.stop();
    expect(done.body).toMatchObject({ status: "completed", output: "123", analysis: "published" });
    // Each step's record once, whichever checkpoint the runner went on from.
    expect(done.body.steps.map((s: { id: string }) => s.id)).toEqual(["one", "two", "three", "end"]);
    expect(done.body.path).toEqual(["one", "two", "three", "end"]);
    expect(calls("/outage-a")).toHaveLength(1);
    expect(calls("/outage-c")).toHaveLength(1);
    const b = calls("/outage-b");
    expect(b.length).toBeGreaterThanOrEqual(1);
    expect(b.length).toBeLessThanOrEqual(2);
    expect(new Set(b.map((r) => r.headers["idempotency-key"])).size).toBe(1);
    const events = (await fixture.drainQueue(fixture.env.ANALYSIS_QUEUE_URL!)).filter((m) =>
      m.Body?.includes(executionId),
    );
    expect(events).toHaveLength(1);
  }, 90_000);
});
