/**
 * The batch analysis: over a window of days it streams the history day by day (a page at a
 * time: memory is bounded by the page and by one aggregate per protocol of the day, never
 * by the history), and for each protocol and day
 * 1. counts the executions the stream has not counted (no marker): those whose event was
 *    never published (`analysis: "pending"`), lost, or still queued. Each is claimed first,
 *    exactly as the stream does, so a message that arrives later is a duplicate;
 * 2. marks the `pending` executions `published` once they are counted;
 * 3. recomputes the day's aggregate from the history and, when the stored bucket disagrees
 *    (an execution left uncounted by a crash between claim and merge, a lost bucket), replaces
 *    it, but only once the day has settled: no claim by another writer and no stream merge in
 *    the last `settleMs`, and the bucket unchanged since it was read (conditional write).
 *    A bucket still receiving writes is left for a later run (`bucketsUnsettled`).
 *
 * Metrics: `ExecutionsAnalysed` is added as each bucket's merge completes (so a run that fails
 * later still reports what it wrote; a successful run that merged nothing reports 0), and
 * `AnalysisFailures` counts, when a day fails at any step, every execution the run claimed or
 * tried to claim that day and did not merge. Those claims are released, so a later run counts
 * them (once: an execution is reported as analysed only by the run whose claim it merged).
 *
 * On demand (`POST /analysis/runs`) the API stores a queued run and sends `{ tenant, runId }`
 * to the run queue; the batch function (or the local worker) executes it and records
 * progress and figures on the run.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import * as z from "zod";
import {
  type ProtocolAggregate,
  addExecution,
  aggregateKeyOf,
  createAggregate,
  recordKeyOf,
} from "../analysis/aggregate.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { AnalysisRun, AnalysisRunFigures, AnalysisRunRequest, AnalysisRunStore } from "../ports.ts";
import type { AnalysisHistoryStore } from "../ports.ts";
import type { DayBucketKey, PatternStore } from "../ports.ts";
import { dayOf } from "../analysis/time.ts";
import type { ExecutionPage } from "../ports.ts";
import { METRIC_ANALYSIS_FAILURES, METRIC_EXECUTIONS_ANALYSED } from "./analysis-ingest.ts";
import { MovaError } from "../errors.ts";

/** The statuses of a run that has ended; only these are counted. */
const COUNTED_STATUSES: ReadonlySet<string> = new Set(["completed", "failed", "timed_out", "cancelled"]);
export const MAX_WINDOW_DAYS = 365;
/** Long enough for any in-flight stream merge (the analyze function's timeout is 60 s) to land. */
const DEFAULT_SETTLE_MS = 15 * 60_000;
const DAY_MS = 86_400_000;

interface BatchScope {
  /** Absent: every tenant (the scheduled run). */
  tenant?: string;
  document?: string;
  protocol?: string;
  timeRangeDays: number;
}

interface BatchAnalysisDeps {
  history: Pick<AnalysisHistoryStore, "queryByDay" | "queryExecutions" | "markAnalysis">;
  patterns: PatternStore;
  logger?: Logger;
  metrics?: Metrics;
  now?: () => number;
  settleMs?: number;
  /** History page size, 1..100. Default 100. */
  pageLimit?: number;
  /** Called after each day with the figures so far. */
  onProgress?(figures: AnalysisRunFigures): Promise<void>;
}

interface ProtocolDay {
  key: DayBucketKey;
  recompute: ProtocolAggregate;
  delta: ProtocolAggregate;
  /** Claimed and not yet merged (emptied by the merge). */
  claimed: string[];
  pending: string[];
  unsettled: boolean;
}

/** The UTC days of a window ending today, oldest first. */
function windowDays(timeRangeDays: number, now: number): string[] {
  const days: string[] = [];
  const today = Date.parse(`${dayOf(new Date(now).toISOString())}T00:00:00Z`);
  for (let i = timeRangeDays - 1; i >= 0; i--)
    days.push(new Date(today - i * DAY_MS).toISOString().slice(0, 10));
  return days;
}

export async function runBatchAnalysis(
  scope: BatchScope,
  runId: string,
  deps: BatchAnalysisDeps,
): Promise<AnalysisRunFigures> {
  if (
    !Number.isInteger(scope.timeRangeDays) ||
    scope.timeRangeDays < 1 ||
    scope.timeRangeDays > MAX_WINDOW_DAYS
  ) {
    throw new RangeError(`timeRangeDays must be an integer from 1 to ${MAX_WINDOW_DAYS}`);
  }
  const now = deps.now ?? Date.now;
  const settleMs = deps.settleMs ?? DEFAULT_SETTLE_MS;
  const claimant = `batch:${runId}`;
  const days = windowDays(scope.timeRangeDays, now());
  const figures: AnalysisRunFigures = {
    daysTotal: days.length,
    daysDone: 0,
    executionsRead: 0,
    executionsInScope: 0,
    reconciled: 0,
    pendingMarked: 0,
    bucketsMerged: 0,
    bucketsReplaced: 0,
    bucketsUnsettled: 0,
  };
  const inScope = (record: ExecutionRecord) =>
    (scope.tenant === undefined || record.tenant === scope.tenant) &&
    (scope.document === undefined || record.document === scope.document) &&
    (scope.protocol === undefined || record.protocol === scope.protocol);

  let analysedReported = false;
  /** The executions of the claim step in progress, uncounted if it throws. */
  let failedAttempt = 0;
  for (const day of days) {
    const protocols = new Map<string, ProtocolDay>();
    try {
      await analyseDay(day, protocols);
    } catch (error) {
      await abandonDay(protocols);
      throw error;
    }
    figures.daysDone++;
    await deps.onProgress?.({ ...figures });
  }
  // A run with nothing to reconcile still says so.
  if (!analysedReported) deps.metrics?.addMetric(METRIC_EXECUTIONS_ANALYSED, MetricUnit.Count, 0);
  return figures;

  /**
   * The executions of the failing day the run could not count: the claims it made and did not
   * merge (released here, so that a later run or the stream counts them), and those of the
   * step that failed (`failedAttempt`, already released there).
   */
  async function abandonDay(protocols: Map<string, ProtocolDay>): Promise<void> {
    let uncounted = failedAttempt;
    failedAttempt = 0;
    for (const state of protocols.values()) {
      if (state.claimed.length === 0) continue;
      uncounted += state.claimed.length;
      await deps.patterns
        .releaseClaims(state.key, state.claimed)
        .catch((releaseError: unknown) =>
          deps.logger?.error("claims not released after a failed day", { error: String(releaseError) }),
        );
      state.claimed = [];
    }
    deps.metrics?.addMetric(METRIC_ANALYSIS_FAILURES, MetricUnit.Count, uncounted);
  }

  async function analyseDay(day: string, protocols: Map<string, ProtocolDay>): Promise<void> {
    for await (const page of historyPages(scope, day, deps)) {
      figures.executionsRead += page.length;
      const groups = new Map<string, ExecutionRecord[]>();
      for (const record of page) {
        // A record stored before its canonical day was known keeps the index's day.
        if (!inScope(record) || dayOf(record.finishedAt, now()) !== day) continue;
        // A run still going on (running, or waiting for input or an event) is counted once it
        // finished, never before: counting it now would claim its marker, and its real end
        // would then be taken as a duplicate.
        if (!COUNTED_STATUSES.has(record.status)) continue;
        figures.executionsInScope++;
        const key = aggregateKeyOf(recordKeyOf(record));
        const group = groups.get(key);
        if (group) group.push(record);
        else groups.set(key, [record]);
      }
      for (const [key, records] of groups) {
        const first = records[0]!;
        let state = protocols.get(key);
        if (!state) {
          // One bucket per document version and day.
          const bucket = { ...recordKeyOf(first), day };
          state = {
            key: bucket,
            recompute: createAggregate(bucket),
            delta: createAggregate(bucket),
            claimed: [],
            pending: [],
            unsettled: false,
          };
          protocols.set(key, state);
        }
        await countPage(state, records);
      }
    }
    for (const state of protocols.values()) await settleDay(state);
  }

  async function countPage(state: ProtocolDay, records: ExecutionRecord[]): Promise<void> {
    // Markers unread: none of the page's executions of this protocol could be counted.
    failedAttempt = records.length;
    const markers = await deps.patterns.readMarkers(
      state.key,
      records.map((r) => r.executionId),
    );
    for (const marker of markers.values()) {
      if (marker.by !== claimant && marker.at > now() - settleMs) state.unsettled = true;
    }
    const unmarked = records.filter((r) => !markers.has(r.executionId));
    failedAttempt = unmarked.length;
    const claim = await deps.patterns.claimExecutions(
      state.key,
      unmarked.map((r) => ({ executionId: r.executionId, day: state.key.day })),
      claimant,
    );
    if (claim.failed.length > 0) {
      failedAttempt = claim.claimed.length + claim.failed.length;
      await deps.patterns.releaseClaims(state.key, claim.claimed).catch(() => undefined);
      throw claim.failed[0]!.error;
    }
    failedAttempt = 0;
    // Claimed by the stream between our read and our claim: its merge may still be on its way.
    if (claim.duplicates.length > 0) state.unsettled = true;
    const claimed = new Set(claim.claimed);
    for (const record of records) {
      addExecution(state.recompute, record);
      if (claimed.has(record.executionId)) {
        addExecution(state.delta, record);
        state.claimed.push(record.executionId);
      }
      if (record.analysis === "pending") state.pending.push(record.executionId);
    }
  }

  async function settleDay(state: ProtocolDay): Promise<void> {
    if (state.claimed.length > 0) {
      // A failed merge leaves the claims in `state.claimed`: abandonDay releases and counts them.
      await deps.patterns.mergeIntoBucket(state.key, state.delta, "batch");
      const merged = state.claimed.length;
      state.claimed = [];
      figures.bucketsMerged++;
      figures.reconciled += merged;
      deps.metrics?.addMetric(METRIC_EXECUTIONS_ANALYSED, MetricUnit.Count, merged);
      analysedReported = true;
    }
    for (const executionId of state.pending) {
      await deps.history.markAnalysis(state.key.tenant, executionId, "published");
      figures.pendingMarked++;
    }
    const bucket = await deps.patterns.readBucket(state.key);
    if (bucket && bucket.aggregate.executions === state.recompute.executions) return;
    const settled = !state.unsettled && (bucket?.streamMergedAt ?? 0) <= now() - settleMs;
    if (settled && (await deps.patterns.replaceBucket(state.key, state.recompute, bucket?.version ?? 0))) {
      figures.bucketsReplaced++;
      deps.logger?.warn("day bucket repaired from the history", {
        ...state.key,
        stored: bucket?.aggregate.executions ?? 0,
        history: state.recompute.executions,
      });
    } else {
      figures.bucketsUnsettled++;
    }
  }
}

async function* historyPages(
  scope: BatchScope,
  day: string,
  deps: BatchAnalysisDeps,
): AsyncGenerator<ExecutionRecord[]> {
  const limit = deps.pageLimit ?? 100;
  let cursor: string | undefined;
  do {
    let page: ExecutionPage;
    if (scope.tenant !== undefined && scope.document !== undefined && scope.protocol !== undefined) {
      page = await deps.history.queryExecutions(scope.tenant, scope.document, scope.protocol, {
        from: `${day}T00:00:00.000Z`,
        to: `${day}T23:59:59.999Z`,
        limit,
        ...(cursor ? { cursor } : {}),
      });
    } else {
      page = await deps.history.queryByDay(day, {
        limit,
        ...(cursor ? { cursor } : {}),
        // An on-demand run reads its own tenant's executions only.
        ...(scope.tenant !== undefined ? { tenant: scope.tenant } : {}),
      });
    }
    yield page.items;
    cursor = page.cursor;
  } while (cursor);
}

// ---- on-demand runs ------------------------------------------------------------------------

export const ANALYSIS_RUN_MESSAGE_TYPE = "mova.analysis.run.requested";

export const AnalysisRunMessageSchema = z.object({
  type: z.literal(ANALYSIS_RUN_MESSAGE_TYPE),
  version: z.literal(1),
  tenant: z.string().min(1),
  runId: z.string().min(1),
});
type AnalysisRunMessage = z.infer<typeof AnalysisRunMessageSchema>;

interface RunRequestDeps {
  runs: AnalysisRunStore;
  sqs: SQSClient;
  /** ANALYSIS_RUN_QUEUE_URL. */
  queueUrl: string | undefined;
  now?: () => number;
}

/** Stores a queued run and sends it to the run queue; the batch analysis executes it. */
export async function requestAnalysisRun(
  tenant: string,
  request: AnalysisRunRequest,
  deps: RunRequestDeps,
): Promise<AnalysisRun> {
  if (!deps.queueUrl) throw new MovaError("analysis_runs_unavailable", "no analysis run queue is configured");
  const now = deps.now ?? Date.now;
  const run: AnalysisRun = {
    runId: `run_${randomUUID().replace(/-/g, "")}`,
    tenant,
    status: "queued",
    request,
    createdAt: new Date(now()).toISOString(),
  };
  await deps.runs.put(run);
  const message: AnalysisRunMessage = {
    type: ANALYSIS_RUN_MESSAGE_TYPE,
    version: 1,
    tenant,
    runId: run.runId,
  };
  try {
    await deps.sqs.send(
      new SendMessageCommand({ QueueUrl: deps.queueUrl, MessageBody: JSON.stringify(message) }),
    );
  } catch (error) {
    await deps.runs
      .put({
        ...run,
        status: "failed",
        finishedAt: new Date(now()).toISOString(),
        error: { code: "run_not_queued", message: "the run could not be queued" },
      })
      .catch(() => undefined);
    throw new MovaError(
      "analysis_runs_unavailable",
      `the run could not be queued: ${(error as Error).message}`,
    );
  }
  return run;
}

interface RunExecutionDeps extends Omit<BatchAnalysisDeps, "onProgress"> {
  runs: AnalysisRunStore;
}

/**
 * Executes a queued run. A run already finished is not run again (a redelivered message);
 * one left `running` by a crash runs again, which the markers make harmless.
 */
export async function executeAnalysisRun(
  message: AnalysisRunMessage,
  deps: RunExecutionDeps,
): Promise<AnalysisRun> {
  const now = deps.now ?? Date.now;
  const stored = await deps.runs.get(message.tenant, message.runId);
  if (!stored) throw new Error(`analysis run ${message.runId} of ${message.tenant} does not exist`);
  if (stored.status === "succeeded" || stored.status === "failed") return stored;
  let run: AnalysisRun = { ...stored, status: "running", startedAt: new Date(now()).toISOString() };
  await deps.runs.put(run);
  try {
    const figures = await runBatchAnalysis(
      {
        tenant: run.tenant,
        ...(run.request.document !== undefined ? { document: run.request.document } : {}),
        ...(run.request.protocol !== undefined ? { protocol: run.request.protocol } : {}),
        timeRangeDays: run.request.timeRangeDays,
      },
      run.runId,
      {
        ...deps,
        onProgress: async (progress) => {
          run = { ...run, progress };
          await deps.runs.put(run);
        },
      },
    );
    run = { ...run, status: "succeeded", progress: figures, finishedAt: new Date(now()).toISOString() };
  } catch (error) {
    deps.logger?.error("analysis run failed", { runId: run.runId, error: error as Error });
    const code = (error as { code?: unknown })?.code;
    run = {
      ...run,
      status: "failed",
      finishedAt: new Date(now()).toISOString(),
      error: {
        code: typeof code === "string" ? code : "analysis_failed",
        message: error instanceof Error ? error.message : String(error),
      },
    };
  }
  await deps.runs.put(run);
  return run;
}
