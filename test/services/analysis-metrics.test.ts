/**
 * The CloudWatch metrics of the analysis functions, as the deployed functions write them:
 * the real `functions/analyze.ts` and `functions/batch-analysis.ts` modules (their own
 * Powertools `Metrics` instances) against the local stack (dynalite, fauxqs), with the
 * environment serverless.yml gives them. Powertools writes one EMF document per
 * `publishStoredMetrics()` as a JSON line on stdout; the tests read those lines.
 */
import { buildAnalysisDeps } from "../../lib/wiring/analysis.ts";
import { randomUUID } from "node:crypto";
import { Metrics } from "@aws-lambda-powertools/metrics";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { toSqsEvent } from "../../infra/local/sqs-poller.ts";
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { type Config, loadConfig } from "../../lib/config.ts";
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";
import {
  type AnalysisDeps,
  type BatchAnalysisResult,
  createAnalyzeHandler,
  createBatchAnalysisHandler,
  type ScheduledEvent,
} from "../../lib/services/analysis-handlers.ts";
import { dayOf } from "../../lib/analysis/time.ts";
import type { AnalysisRunRequest } from "../../lib/ports.ts";
import { ANALYSIS_RUN_MESSAGE_TYPE } from "../../lib/services/batch-analysis.ts";
import { sampleExecution, uniqueTenant } from "../support/runtime-fixtures.ts";

/** One EMF document (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html). */
interface EmfDocument {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string; StorageResolution?: number }>;
    }>;
  };
  [key: string]: unknown;
}

let stack: LocalStack;
let config: Config;
/** The stores, for arranging data; the handlers under test build their own. */
let deps: AnalysisDeps;
let analyze: (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse>;
let batchAnalysis: (event: SQSEvent | ScheduledEvent, context?: Context) => Promise<BatchAnalysisResult>;

const METRIC_ENV = [
  "POWERTOOLS_DEV",
  "POWERTOOLS_METRICS_DISABLED",
  "POWERTOOLS_METRICS_NAMESPACE",
  "POWERTOOLS_SERVICE_NAME",
  "LOG_LEVEL",
] as const;
const savedEnv = new Map(METRIC_ENV.map((key) => [key, process.env[key]]));

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
  // What serverless.yml sets on every function (provider.environment), and no dev mode:
  // POWERTOOLS_DEV would turn metrics off.
  delete process.env.POWERTOOLS_DEV;
  delete process.env.POWERTOOLS_METRICS_DISABLED;
  Object.assign(process.env, stack.env, {
    POWERTOOLS_SERVICE_NAME: "mova",
    POWERTOOLS_METRICS_NAMESPACE: "Mova",
    LOG_LEVEL: "SILENT",
  });
  config = loadConfig(process.env);
  deps = buildAnalysisDeps(config, { env: process.env });
  // The function modules read the environment when they are loaded, as in Lambda.
  analyze = (await import("../../functions/analyze.ts")).handler;
  batchAnalysis = (await import("../../functions/batch-analysis.ts")).handler;
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  for (const [key, value] of savedEnv) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

/** Runs `invoke` and returns what it wrote to stdout as EMF documents (other lines dropped). */
async function captureEmf<T>(invoke: () => Promise<T>): Promise<{ result: T; documents: EmfDocument[] }> {
  const lines: string[] = [];
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    lines.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
    return true;
  });
  let result: T;
  try {
    result = await invoke();
  } finally {
    write.mockRestore();
  }
  const documents = lines
    .join("")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((json): json is EmfDocument => typeof json._aws === "object" && json._aws !== null);
  return { result, documents };
}

/** The single document an invocation must write, checked against the EMF shape. */
function onlyDocument(documents: EmfDocument[], service: string): EmfDocument {
  expect(documents).toHaveLength(1);
  const document = documents[0]!;
  expect(document._aws.CloudWatchMetrics).toHaveLength(1);
  const directive = document._aws.CloudWatchMetrics[0]!;
  expect(directive.Namespace).toBe("Mova");
  expect(directive.Dimensions).toEqual([["service"]]);
  expect(document.service).toBe(service);
  // Every declared metric has its value at the top level, and nothing else is a number there
  // besides the declared metrics (no stray metric without a definition).
  for (const metric of directive.Metrics) expect(document).toHaveProperty([metric.Name]);
  const numeric = Object.keys(document).filter((key) => {
    const value = document[key];
    return typeof value === "number" || (Array.isArray(value) && value.every((v) => typeof v === "number"));
  });
  expect(numeric.sort()).toEqual(directive.Metrics.map((m) => m.Name).sort());
  return document;
}

/** The metric definitions by name (name → unit), standard resolution only. */
function unitsOf(document: EmfDocument): Record<string, string> {
  const metrics = document._aws.CloudWatchMetrics[0]!.Metrics;
  for (const metric of metrics) expect(metric.StorageResolution).toBeUndefined();
  return Object.fromEntries(metrics.map((metric) => [metric.Name, metric.Unit]));
}

function valuesOf(document: EmfDocument, name: string): number[] {
  const value = document[name] as number | number[];
  return Array.isArray(value) ? value : [value];
}

function execution(tenant: string, overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return sampleExecution({ tenant, executionId: randomUUID(), ...overrides });
}

function eventBody(record: ExecutionRecord): string {
  return JSON.stringify({
    type: "mova.execution.finished",
    version: 1,
    publishedAt: new Date().toISOString(),
    execution: record,
  });
}

function sqsEvent(bodies: string[], queueUrl = stack.env.ANALYSIS_QUEUE_URL!): SQSEvent {
  return toSqsEvent(
    bodies.map((body) => ({ MessageId: randomUUID(), ReceiptHandle: randomUUID(), Body: body })),
    queueUrl,
    config.AWS_REGION,
  );
}

const STREAM_UNITS = {
  ExecutionsAnalysed: "Count",
  AnalysisFailures: "Count",
  QueueLagMs: "Milliseconds",
};

describe("the analyze function's metrics", () => {
  it("counts a batch of valid events, with one queue lag per counted execution", async () => {
    const tenant = uniqueTenant("metrics-ok");
    const lagMs = [4_000, 9_000, 60_000];
    const records = lagMs.map((lag) =>
      execution(tenant, { finishedAt: new Date(Date.now() - lag).toISOString() }),
    );
    const before = Date.now();
    const { result, documents } = await captureEmf(() => analyze(sqsEvent(records.map(eventBody))));
    const after = Date.now();

    expect(result).toEqual({ batchItemFailures: [] });
    const document = onlyDocument(documents, "analyze");
    expect(unitsOf(document)).toEqual(STREAM_UNITS);
    expect(document.ExecutionsAnalysed).toBe(3);
    expect(document.AnalysisFailures).toBe(0);
    expect(document._aws.Timestamp).toBeGreaterThanOrEqual(before);
    expect(document._aws.Timestamp).toBeLessThanOrEqual(after);
    // Analysis time minus finishedAt: between the lag at the call and the lag at its end.
    const lags = valuesOf(document, "QueueLagMs").sort((a, b) => a - b);
    expect(lags).toHaveLength(3);
    records.forEach((record, i) => {
      const finished = Date.parse(record.finishedAt);
      expect(lags[i]).toBeGreaterThanOrEqual(before - finished);
      expect(lags[i]).toBeLessThanOrEqual(after - finished);
    });
  });

  it("counts each poison message as a failure, and only the valid ones as analysed", async () => {
    const tenant = uniqueTenant("metrics-poison");
    const good = [execution(tenant), execution(tenant)];
    const event = sqsEvent([
      eventBody(good[0]!),
      JSON.stringify({ type: "mova.execution.finished", version: 99, execution: { tenant } }),
      "not json",
      eventBody(good[1]!),
    ]);
    const { result, documents } = await captureEmf(() => analyze(event));

    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      [event.Records[1]!.messageId, event.Records[2]!.messageId].sort(),
    );
    const document = onlyDocument(documents, "analyze");
    expect(unitsOf(document)).toEqual(STREAM_UNITS);
    expect(document.ExecutionsAnalysed).toBe(2);
    expect(document.AnalysisFailures).toBe(2);
    expect(valuesOf(document, "QueueLagMs")).toHaveLength(2);
  });

  it("does not count a redelivered batch or a repeated message again, and carries nothing over", async () => {
    const tenant = uniqueTenant("metrics-again");
    const record = execution(tenant);
    const event = sqsEvent([eventBody(record), eventBody(record)]);

    const first = await captureEmf(() => analyze(event));
    const once = onlyDocument(first.documents, "analyze");
    expect(once.ExecutionsAnalysed).toBe(1);
    expect(once.AnalysisFailures).toBe(0);
    expect(valuesOf(once, "QueueLagMs")).toHaveLength(1);

    const again = await captureEmf(() => analyze(event));
    expect(again.result).toEqual({ batchItemFailures: [] });
    const twice = onlyDocument(again.documents, "analyze");
    // No lag for an execution that was not counted: the metric is absent, not zero.
    expect(unitsOf(twice)).toEqual({ ExecutionsAnalysed: "Count", AnalysisFailures: "Count" });
    expect(twice.ExecutionsAnalysed).toBe(0);
    expect(twice.AnalysisFailures).toBe(0);
  });

  it("counts every message of a bucket whose write failed as a failure", async () => {
    // The same wiring as functions/analyze.ts, with a patterns table that refuses the merge.
    const failing = createAnalyzeHandler({
      ...buildAnalysisDeps(config, {
        env: process.env,
        metrics: new Metrics({ namespace: "Mova", serviceName: "analyze" }),
      }),
      patterns: {
        ...deps.patterns,
        mergeIntoBucket: () => Promise.reject(Object.assign(new Error("throttled"), { code: "throttled" })),
      },
    });
    const tenant = uniqueTenant("metrics-write");
    const records = [execution(tenant), execution(tenant), execution(tenant, { protocol: "exchange" })];
    const event = sqsEvent(records.map(eventBody));
    const { result, documents } = await captureEmf(() => failing(event));

    expect(result.batchItemFailures).toHaveLength(3);
    const document = onlyDocument(documents, "analyze");
    expect(unitsOf(document)).toEqual({ ExecutionsAnalysed: "Count", AnalysisFailures: "Count" });
    expect(document.ExecutionsAnalysed).toBe(0);
    expect(document.AnalysisFailures).toBe(3);
  });
});

describe("the batch-analysis function's metrics", () => {
  it("counts the executions a scheduled run reconciles", async () => {
    const tenant = uniqueTenant("metrics-schedule");
    // Never published: only the batch analysis can count them.
    for (let i = 0; i < 4; i++) await deps.history.putExecution(execution(tenant, { analysis: "pending" }));
    const { result, documents } = await captureEmf(() =>
      batchAnalysis({
        source: "aws.events",
        "detail-type": "Scheduled Event",
        time: new Date().toISOString(),
      }),
    );

    expect(result).toMatchObject({ figures: { reconciled: 4 } });
    const document = onlyDocument(documents, "batch-analysis");
    expect(unitsOf(document)).toEqual({ ExecutionsAnalysed: "Count" });
    expect(document.ExecutionsAnalysed).toBe(4);
  });

  it("counts the executions an on-demand run reconciles", async () => {
    const tenant = uniqueTenant("metrics-run");
    for (let i = 0; i < 3; i++) await deps.history.putExecution(execution(tenant, { analysis: "pending" }));
    const runId = `run_${randomUUID().replace(/-/g, "")}`;
    await deps.runs.put({
      runId,
      tenant,
      status: "queued",
      request: { timeRangeDays: 2 },
      createdAt: new Date().toISOString(),
    });
    const message = JSON.stringify({ type: ANALYSIS_RUN_MESSAGE_TYPE, version: 1, tenant, runId });
    const { result, documents } = await captureEmf(() =>
      batchAnalysis(sqsEvent([message], stack.env.ANALYSIS_RUN_QUEUE_URL!)),
    );

    expect(result).toEqual({ batchItemFailures: [] });
    expect((await deps.runs.get(tenant, runId))?.progress).toMatchObject({ reconciled: 3 });
    const document = onlyDocument(documents, "batch-analysis");
    expect(unitsOf(document)).toEqual({ ExecutionsAnalysed: "Count" });
    expect(document.ExecutionsAnalysed).toBe(3);
  });

  it("counts the claimed executions of a day whose merge failed as failures", async () => {
    const failing = createBatchAnalysisHandler({
      ...buildAnalysisDeps(config, {
        env: process.env,
        metrics: new Metrics({ namespace: "Mova", serviceName: "batch-analysis" }),
      }),
      patterns: {
        ...deps.patterns,
        mergeIntoBucket: () => Promise.reject(new Error("throttled")),
      },
    });
    const tenant = uniqueTenant("metrics-batch-write");
    for (let i = 0; i < 2; i++) await deps.history.putExecution(execution(tenant, { analysis: "pending" }));
    const runId = `run_${randomUUID().replace(/-/g, "")}`;
    await deps.runs.put({
      runId,
      tenant,
      status: "queued",
      request: { timeRangeDays: 1 },
      createdAt: new Date().toISOString(),
    });
    const message = JSON.stringify({ type: ANALYSIS_RUN_MESSAGE_TYPE, version: 1, tenant, runId });
    const { documents } = await captureEmf(() =>
      failing(sqsEvent([message], stack.env.ANALYSIS_RUN_QUEUE_URL!)),
    );

    expect((await deps.runs.get(tenant, runId))?.status).toBe("failed");
    const document = onlyDocument(documents, "batch-analysis");
    expect(unitsOf(document)).toEqual({ AnalysisFailures: "Count" });
    expect(document.AnalysisFailures).toBe(2);
  });

  /** Stores a queued on-demand run of `tenant` and returns its message on the run queue. */
  async function queuedRun(
    tenant: string,
    request: AnalysisRunRequest,
  ): Promise<{ runId: string; event: SQSEvent }> {
    const runId = `run_${randomUUID().replace(/-/g, "")}`;
    await deps.runs.put({ runId, tenant, status: "queued", request, createdAt: new Date().toISOString() });
    const message = JSON.stringify({ type: ANALYSIS_RUN_MESSAGE_TYPE, version: 1, tenant, runId });
    return { runId, event: sqsEvent([message], stack.env.ANALYSIS_RUN_QUEUE_URL!) };
  }

  /** The batch-analysis function's wiring with some of its stores replaced. */
  function batchHandlerWith(overrides: Partial<AnalysisDeps>) {
    return createBatchAnalysisHandler({
      ...buildAnalysisDeps(config, {
        env: process.env,
        metrics: new Metrics({ namespace: "Mova", serviceName: "batch-analysis" }),
      }),
      ...overrides,
    });
  }

  /** How many of `records` (one protocol and day) have a marker, i.e. are claimed or counted. */
  async function markedCount(records: ExecutionRecord[]): Promise<number> {
    const first = records[0]!;
    const key = { ...first, day: dayOf(first.finishedAt) };
    const markers = await deps.patterns.readMarkers(
      key,
      records.map((r) => r.executionId),
    );
    return markers.size;
  }

  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

  it("reports the executions merged on the days before a failed day as analysed, once", async () => {
    const tenant = uniqueTenant("metrics-batch-day2");
    const yesterday = Array.from({ length: 2 }, () =>
      execution(tenant, { analysis: "pending", finishedAt: new Date(Date.now() - 86_400_000).toISOString() }),
    );
    const refunds = Array.from({ length: 2 }, () => execution(tenant, { analysis: "pending" }));
    const exchanges = [execution(tenant, { analysis: "pending", protocol: "exchange" })];
    for (const record of [...yesterday, ...refunds, ...exchanges]) await deps.history.putExecution(record);
    const todayKey = dayOf(refunds[0]!.finishedAt);
    // The first day (yesterday) merges; on the second day, the first merge is refused: the
    // executions claimed for the other protocol are not merged either.
    const failing = batchHandlerWith({
      patterns: {
        ...deps.patterns,
        mergeIntoBucket: (key, delta, source) =>
          key.day === todayKey
            ? Promise.reject(new Error("throttled"))
            : deps.patterns.mergeIntoBucket(key, delta, source),
      },
    });
    const first = await queuedRun(tenant, { timeRangeDays: 2 });
    const { documents } = await captureEmf(() => failing(first.event));

    const run = await deps.runs.get(tenant, first.runId);
    expect(run?.status).toBe("failed");
    expect(run?.progress).toMatchObject({ daysDone: 1, reconciled: 2 });
    const document = onlyDocument(documents, "batch-analysis");
    expect(unitsOf(document)).toEqual({ ExecutionsAnalysed: "Count", AnalysisFailures: "Count" });
    expect(sum(valuesOf(document, "ExecutionsAnalysed"))).toBe(2);
    expect(sum(valuesOf(document, "AnalysisFailures"))).toBe(3);
    expect(await markedCount(yesterday)).toBe(2);
    expect(await markedCount(refunds)).toBe(0);
    expect(await markedCount(exchanges)).toBe(0);

    // The next run counts the second day only: the first day's executions are not reported again.
    const second = await queuedRun(tenant, { timeRangeDays: 2 });
    const again = await captureEmf(() => batchAnalysis(second.event));
    expect((await deps.runs.get(tenant, second.runId))?.status).toBe("succeeded");
    const retried = onlyDocument(again.documents, "batch-analysis");
    expect(unitsOf(retried)).toEqual({ ExecutionsAnalysed: "Count" });
    expect(sum(valuesOf(retried, "ExecutionsAnalysed"))).toBe(3);
  });

  it("counts the executions of a failed claim as failures, and releases what was claimed", async () => {
    const tenant = uniqueTenant("metrics-batch-claim");
    const records = Array.from({ length: 3 }, () => execution(tenant, { analysis: "pending" }));
    for (const record of records) await deps.history.putExecution(record);
    // One marker write fails (not a condition failure); the others go through.
    const failing = batchHandlerWith({
      patterns: {
        ...deps.patterns,
        claimExecutions: async (key, executions, by) => {
          const [refused, ...rest] = executions;
          const result = await deps.patterns.claimExecutions(key, rest, by);
          if (!refused) return result;
          const error = Object.assign(new Error("throttled"), { name: "ThrottlingException" });
          return { ...result, failed: [...result.failed, { executionId: refused.executionId, error }] };
        },
      },
    });
    const first = await queuedRun(tenant, { timeRangeDays: 1 });
    const { documents } = await captureEmf(() => failing(first.event));

    expect((await deps.runs.get(tenant, first.runId))?.status).toBe("failed");
    const document = onlyDocument(documents, "batch-analysis");
    expect(unitsOf(document)).toEqual({ AnalysisFailures: "Count" });
    expect(sum(valuesOf(document, "AnalysisFailures"))).toBe(3);
    expect(await markedCount(records)).toBe(0);

    const second = await queuedRun(tenant, { timeRangeDays: 1 });
    const again = await captureEmf(() => batchAnalysis(second.event));
    const retried = onlyDocument(again.documents, "batch-analysis");
    expect(unitsOf(retried)).toEqual({ ExecutionsAnalysed: "Count" });
    expect(sum(valuesOf(retried, "ExecutionsAnalysed"))).toBe(3);
  });

  it("counts the claims of a day's earlier pages as failures when a later page's claim fails", async () => {
    const tenant = uniqueTenant("metrics-batch-pages");
    const records = Array.from({ length: 5 }, () => execution(tenant, { analysis: "pending" }));
    for (const record of records) await deps.history.putExecution(record);
    // Pages of two executions (a run naming a protocol reads byProtocolTime); the second
    // page's claim fails: the first page's two claims were never merged either.
    let claims = 0;
    const failing = batchHandlerWith({
      history: {
        ...deps.history,
        queryExecutions: (t, d, p, options) =>
          deps.history.queryExecutions(t, d, p, { ...options, limit: 2 }),
      },
      patterns: {
        ...deps.patterns,
        claimExecutions: async (key, executions, by) => {
          if (++claims === 1) return deps.patterns.claimExecutions(key, executions, by);
          const error = new Error("throttled");
          return {
            claimed: [],
            duplicates: [],
            failed: executions.map(({ executionId }) => ({ executionId, error })),
          };
        },
      },
    });
    const first = await queuedRun(tenant, { document: "support", protocol: "refund", timeRangeDays: 1 });
    const { documents } = await captureEmf(() => failing(first.event));

    expect(claims).toBe(2);
    expect((await deps.runs.get(tenant, first.runId))?.status).toBe("failed");
    const document = onlyDocument(documents, "batch-analysis");
    expect(unitsOf(document)).toEqual({ AnalysisFailures: "Count" });
    // Two claimed and not merged, two refused; the fifth was never read.
    expect(sum(valuesOf(document, "AnalysisFailures"))).toBe(4);
    expect(await markedCount(records)).toBe(0);
  });
});
