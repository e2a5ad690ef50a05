/**
 * The incremental and batch analysis against the local stack (dynalite, fauxqs): real SQS
 * messages published by the real publisher, polled by the local poller into the real analyze
 * handler, aggregates in the real patterns table.
 */
import { buildAnalysisDeps } from "../../lib/wiring/analysis.ts";
import { randomUUID } from "node:crypto";
import { ReceiveMessageCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { Logger } from "@aws-lambda-powertools/logger";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../lib/config.ts";
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { dayOf } from "../../lib/analysis/time.ts";
import type { EventPublisher } from "../../lib/ports.ts";
import { createSqsPublisher } from "../../lib/adapters/sqs/publisher.ts";
import {
  type AnalysisDeps,
  createAnalyzeHandler,
  type SqsHandler,
} from "../../lib/services/analysis-handlers.ts";
import { runBatchAnalysis } from "../../lib/services/batch-analysis.ts";
import { startQueuePoller, toSqsEvent } from "../../infra/local/sqs-poller.ts";
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { sampleExecution, uniqueTenant } from "../support/runtime-fixtures.ts";

let stack: LocalStack;
let config: Config;
let deps: AnalysisDeps;
let handler: SqsHandler;
let sqs: SQSClient;
let publisher: EventPublisher;

const quiet = () => new Logger({ serviceName: "mova-analysis-test", logLevel: "SILENT" });

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
  const env = { ...stack.env, LOG_LEVEL: "SILENT" };
  config = loadConfig(env);
  deps = buildAnalysisDeps(config, { env, logger: quiet() });
  handler = createAnalyzeHandler(deps);
  sqs = createSqsClient(config, { env });
  publisher = createSqsPublisher({
    client: sqs,
    queueUrl: stack.env.ANALYSIS_QUEUE_URL!,
    priorityQueueUrl: stack.env.ANALYSIS_PRIORITY_QUEUE_URL!,
  });
}, 60_000);

afterAll(async () => {
  sqs?.destroy();
  await stack?.stop();
});

function execution(tenant: string, overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return sampleExecution({ tenant, executionId: randomUUID(), ...overrides });
}

async function countedExecutions(
  record: Pick<ExecutionRecord, "tenant" | "document" | "protocol" | "finishedAt">,
) {
  const day = dayOf(record.finishedAt);
  const window = await deps.patterns.readWindow(record, day, day);
  return window?.aggregate.executions ?? 0;
}

/** A poller that is driven round by round (no background loop racing the test). */
function manualPoller(
  queueUrls: string[],
  batches: Array<{ queue: string; ids: string[]; failed: string[] }> = [],
) {
  const poller = startQueuePoller({
    sqs,
    region: config.AWS_REGION,
    queueUrls,
    handler,
    waitSeconds: 0,
    retryDelaySeconds: 0,
    loop: false,
    onBatch: (queue, ids, failed) => batches.push({ queue, ids, failed }),
  });
  return { poller, batches };
}

async function drain(pollOnce: () => Promise<boolean>, rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) if (!(await pollOnce())) return;
}

describe("the analyze handler on SQS messages", () => {
  it("counts an execution delivered three times once", async () => {
    const tenant = uniqueTenant("thrice");
    const record = execution(tenant);
    await deps.history.putExecution(record);
    for (let i = 0; i < 3; i++) await publisher.publishExecution(record);

    const { poller, batches } = manualPoller([stack.env.ANALYSIS_QUEUE_URL!]);
    await drain(() => poller.pollOnce());
    expect(batches.flatMap((b) => b.ids)).toHaveLength(3);
    expect(batches.flatMap((b) => b.failed)).toEqual([]);
    expect(await countedExecutions(record)).toBe(1);

    // The very same SQS event redelivered (same message ids) changes nothing either.
    const other = execution(tenant);
    const body = JSON.stringify({
      type: "mova.execution.finished",
      version: 1,
      publishedAt: new Date().toISOString(),
      execution: other,
    });
    const event: SQSEvent = toSqsEvent(
      [
        { MessageId: "m-1", ReceiptHandle: "r-1", Body: body },
        { MessageId: "m-2", ReceiptHandle: "r-2", Body: body },
      ],
      stack.env.ANALYSIS_QUEUE_URL!,
      config.AWS_REGION,
    );
    for (let i = 0; i < 3; i++) expect(await handler(event)).toEqual({ batchItemFailures: [] });
    // The bucket holds `record` and `other`, each once.
    expect(await countedExecutions(other)).toBe(2);
    const markers = await deps.patterns.readMarkers(other, [record.executionId, other.executionId]);
    expect([...markers.values()].map((m) => m.by)).toEqual(["stream", "stream"]);
  });

  it("fails a poison message alone, and after five receives it is in the dead-letter queue", async () => {
    const tenant = uniqueTenant("poison");
    const good = execution(tenant);
    await publisher.publishExecution(good);
    const poison = await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.env.ANALYSIS_QUEUE_URL!,
        MessageBody: JSON.stringify({ type: "mova.execution.finished", version: 99, execution: { tenant } }),
      }),
    );
    const { poller, batches } = manualPoller([stack.env.ANALYSIS_QUEUE_URL!]);
    await drain(() => poller.pollOnce());

    const withPoison = batches.filter((b) => b.ids.includes(poison.MessageId!));
    expect(withPoison).toHaveLength(5);
    for (const batch of withPoison) expect(batch.failed).toEqual([poison.MessageId]);
    expect(await countedExecutions(good)).toBe(1);

    const dead = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.env.ANALYSIS_DLQ_URL!,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    expect((dead.Messages ?? []).map((m) => m.MessageId)).toContain(poison.MessageId);
  });

  it("analyses failures from the priority queue before a backlog of successes", async () => {
    const tenant = uniqueTenant("priority");
    const successes = Array.from({ length: 25 }, () => execution(tenant));
    const failures = Array.from({ length: 4 }, () =>
      execution(tenant, { status: "failed", error: { code: "tool_failed", message: "503" } }),
    );
    for (const record of successes) await publisher.publishExecution(record);
    for (const record of failures) await publisher.publishExecution(record);

    const priorityUrl = stack.env.ANALYSIS_PRIORITY_QUEUE_URL!;
    const { poller, batches } = manualPoller([priorityUrl, stack.env.ANALYSIS_QUEUE_URL!]);
    await drain(() => poller.pollOnce());

    const firstOrdinary = batches.findIndex((b) => b.queue !== priorityUrl);
    const lastPriority = batches.map((b) => b.queue).lastIndexOf(priorityUrl);
    expect(lastPriority).toBeGreaterThanOrEqual(0);
    expect(lastPriority).toBeLessThan(firstOrdinary);
    expect(batches.filter((b) => b.queue === priorityUrl).flatMap((b) => b.ids)).toHaveLength(4);
    const day = dayOf(successes[0]!.finishedAt);
    const window = await deps.patterns.readWindow(successes[0]!, day, day);
    expect(window?.aggregate.executions).toBe(29);
    expect(window?.aggregate.failed).toBe(4);
  });
});

describe("child runs", () => {
  it("counts a parent and each child under its own protocol once, the parent's tokens holding none of its children's", async () => {
    const tenant = uniqueTenant("children");
    const parentId = `ex_${randomUUID().replaceAll("-", "")}`;
    const finishedAt = new Date().toISOString();
    const children = [0, 1, 2].map((index) =>
      execution(tenant, {
        executionId: `${parentId}~each.1~${index}`,
        protocol: "greet",
        parentExecutionId: parentId,
        parentStep: "each",
        parentVisit: 1,
        itemIndex: index,
        path: ["write"],
        steps: [
          {
            id: "write",
            action: "prompt",
            status: "succeeded",
            attempts: 1,
            startedAt: finishedAt,
            durationMs: 5,
            model: "m",
            usage: { promptTokens: 10, completionTokens: 5, totalTokens: 15 },
          },
        ],
      }),
    );
    const parent = execution(tenant, {
      executionId: parentId,
      protocol: "welcome",
      path: ["each"],
      steps: [
        {
          id: "each",
          action: "foreach",
          status: "succeeded",
          attempts: 1,
          startedAt: finishedAt,
          durationMs: 20,
          children: children.map((child, index) => ({
            protocol: "greet",
            index,
            status: "completed" as const,
            durationMs: 5,
            executionId: child.executionId,
            path: ["write"],
          })),
        },
      ],
    });
    // In the history (the batch analysis reads it) and on the queue twice (a duplicate delivery).
    for (const record of [parent, ...children]) {
      await deps.history.putExecution(record);
      await publisher.publishExecution(record);
      await publisher.publishExecution(record);
    }
    const { poller } = manualPoller([stack.env.ANALYSIS_QUEUE_URL!]);
    await drain(() => poller.pollOnce());
    await runBatchAnalysis({ tenant, timeRangeDays: 1 }, "run-children", { ...deps, settleMs: 0 });

    const day = dayOf(finishedAt);
    const welcome = await deps.patterns.readWindow(parent, day, day);
    const greet = await deps.patterns.readWindow(children[0]!, day, day);
    expect(welcome?.aggregate.executions).toBe(1);
    expect(greet?.aggregate.executions).toBe(3);
    expect(greet?.aggregate.runTokens).toMatchObject({ runs: 3, prompt: 30, completion: 15 });
    expect(welcome?.aggregate.runTokens).toMatchObject({ runs: 1, prompt: 0, completion: 0 });
  });
});

describe("the batch analysis", () => {
  it("counts an execution whose publish failed once, even when its message arrives later", async () => {
    const tenant = uniqueTenant("pending");
    const streamed = execution(tenant);
    const pending = execution(tenant, { analysis: "pending" });
    await deps.history.putExecution(streamed);
    await deps.history.putExecution(pending);
    await publisher.publishExecution(streamed);
    const { poller } = manualPoller([stack.env.ANALYSIS_QUEUE_URL!]);
    await drain(() => poller.pollOnce());
    expect(await countedExecutions(streamed)).toBe(1);

    const figures = await runBatchAnalysis({ tenant, timeRangeDays: 2 }, "run-a", { ...deps, settleMs: 0 });
    expect(figures).toMatchObject({
      executionsInScope: 2,
      reconciled: 1,
      pendingMarked: 1,
      bucketsReplaced: 0,
    });
    expect(await countedExecutions(streamed)).toBe(2);
    expect((await deps.history.getExecution(tenant, pending.executionId))?.analysis).toBe("published");

    // The publish of the pending execution finally goes through: it is a duplicate now.
    await publisher.publishExecution(pending);
    await drain(() => poller.pollOnce());
    expect(await countedExecutions(streamed)).toBe(2);

    const again = await runBatchAnalysis({ tenant, timeRangeDays: 2 }, "run-b", { ...deps, settleMs: 0 });
    expect(again).toMatchObject({ reconciled: 0, pendingMarked: 0, bucketsReplaced: 0, bucketsUnsettled: 0 });
    expect(await countedExecutions(streamed)).toBe(2);
  });

  it("repairs a day left short by a crash between claim and merge, once the day has settled", async () => {
    const tenant = uniqueTenant("repair");
    const counted = execution(tenant);
    const lost = execution(tenant);
    await deps.history.putExecution(counted);
    await deps.history.putExecution(lost);
    await publisher.publishExecution(counted);
    const { poller } = manualPoller([stack.env.ANALYSIS_QUEUE_URL!]);
    await drain(() => poller.pollOnce());
    // What a crash after the claim leaves: a marker and no count.
    await deps.patterns.claimExecutions(
      lost,
      [{ executionId: lost.executionId, day: dayOf(lost.finishedAt) }],
      "stream",
    );
    await publisher.publishExecution(lost);
    await drain(() => poller.pollOnce());
    expect(await countedExecutions(counted)).toBe(1);

    // The stream wrote moments ago: the batch leaves the bucket alone.
    const early = await runBatchAnalysis({ tenant, timeRangeDays: 1 }, "run-c", deps);
    expect(early).toMatchObject({ reconciled: 0, bucketsReplaced: 0, bucketsUnsettled: 1 });
    expect(await countedExecutions(counted)).toBe(1);

    const settled = await runBatchAnalysis({ tenant, timeRangeDays: 1 }, "run-d", { ...deps, settleMs: 0 });
    expect(settled).toMatchObject({ reconciled: 0, bucketsReplaced: 1 });
    expect(await countedExecutions(counted)).toBe(2);
  });

  it("streams the history a page at a time and scopes a run to one protocol", async () => {
    const tenant = uniqueTenant("pages");
    const records = Array.from({ length: 7 }, (_, i) =>
      execution(tenant, { protocol: i % 2 === 0 ? "refund" : "exchange", analysis: "pending" }),
    );
    for (const record of records) await deps.history.putExecution(record);
    const figures = await runBatchAnalysis(
      { tenant, document: "support", protocol: "refund", timeRangeDays: 1 },
      "run-e",
      { ...deps, settleMs: 0, pageLimit: 2 },
    );
    expect(figures).toMatchObject({ executionsInScope: 4, reconciled: 4, pendingMarked: 4 });
    expect(await countedExecutions(records[0]!)).toBe(4);
    expect(await countedExecutions(records[1]!)).toBe(0);
  });
});

describe("the batch analysis counts only finished runs of its own tenant", () => {
  it("leaves a waiting or running run uncounted and unclaimed, so its real end is counted once", async () => {
    const tenant = uniqueTenant("unfinished");
    const done = execution(tenant, { analysis: "pending" });
    const waiting = execution(tenant, { status: "waiting_input", analysis: "pending" });
    const running = execution(tenant, { status: "running", analysis: "pending" });
    for (const record of [done, waiting, running]) await deps.history.putExecution(record);
    const first = await runBatchAnalysis({ tenant, timeRangeDays: 1 }, "run-u1", { ...deps, settleMs: 0 });
    expect(first).toMatchObject({ executionsInScope: 1, reconciled: 1 });
    expect(await countedExecutions(done)).toBe(1);

    // The waiting run ends (timed out): the stream counts it, not as a duplicate.
    const ended = { ...waiting, status: "timed_out" as const };
    await deps.history.putExecution(ended);
    await publisher.publishExecution(ended);
    const { poller } = manualPoller([stack.env.ANALYSIS_QUEUE_URL!, stack.env.ANALYSIS_PRIORITY_QUEUE_URL!]);
    await drain(() => poller.pollOnce());
    expect(await countedExecutions(done)).toBe(2);
    const window = await deps.patterns.readWindow(done, dayOf(done.finishedAt), dayOf(done.finishedAt));
    expect(window?.aggregate).toMatchObject({ executions: 2, waitingInput: 0, timedOut: 1 });
  });

  it("reads only the requesting tenant's executions of the day", async () => {
    const mine = uniqueTenant("mine");
    const other = uniqueTenant("other");
    await deps.history.putExecution(execution(mine, { analysis: "pending" }));
    await deps.history.putExecution(execution(other, { analysis: "pending" }));
    const day = dayOf(new Date().toISOString());
    const seen: string[] = [];
    const spying = {
      ...deps,
      settleMs: 0,
      history: {
        ...deps.history,
        queryByDay: async (d: string, query?: Parameters<typeof deps.history.queryByDay>[1]) => {
          const page = await deps.history.queryByDay(d, query);
          seen.push(...page.items.map((record) => record.tenant));
          return page;
        },
      },
    };
    await runBatchAnalysis({ tenant: mine, timeRangeDays: 1 }, "run-t1", spying);
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([mine]));
    expect(day).toMatch(/^\d{4}-\d\d-\d\d$/);
  });
});
