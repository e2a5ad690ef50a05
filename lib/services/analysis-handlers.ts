/**
 * The Lambda handlers of the analysis, with their dependencies injected so that the
 * functions, the local workers and the tests run the same code:
 * - analyze: SQS execution events → one write per protocol and day; a failed message is
 *   reported alone (partial batch response) and, after the redrive count, ends in the DLQ.
 * - batchAnalysis: the EventBridge schedule (every tenant, ANALYSIS_WINDOW_DAYS) and SQS run
 *   requests from `POST /analysis/runs`.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { Config } from "../config.ts";
import type { AnalysisRunStore } from "../ports.ts";
import type { AnalysisHistoryStore } from "../ports.ts";
import type { PatternStore } from "../ports.ts";
import { type BudgetDeps, type EventOutcome, processExecutionEvents } from "./analysis-ingest.ts";
import type { RollbackDeps } from "./traffic-split.ts";
import type { EvaluatorDeps } from "./evaluators.ts";
import type { AnalysisRunFigures } from "../ports.ts";
import { AnalysisRunMessageSchema, executeAnalysisRun, runBatchAnalysis } from "./batch-analysis.ts";
import { MovaError } from "../errors.ts";

export interface AnalysisDeps {
  config: Pick<Config, "ANALYSIS_WINDOW_DAYS">;
  history: AnalysisHistoryStore;
  patterns: PatternStore;
  runs: AnalysisRunStore;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
  /** See lib/services/batch-analysis.ts; tests shorten it. */
  settleMs?: number;
  /** The monthly budgets (see analysis-ingest.ts). */
  budget?: BudgetDeps;
  /** The traffic splits' automatic rollback (see traffic-split.ts). */
  rollback?: RollbackDeps;
  /** The evaluators, judging the runs the analysis counts (see evaluators.ts). */
  evaluators?: EvaluatorDeps;
}

export type SqsHandler = (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse>;

export function createAnalyzeHandler(deps: AnalysisDeps): SqsHandler {
  return async (event, context) => {
    // The whole batch is grouped and written first (one write per protocol and day); the
    // record handler then only reports each message's outcome to the processor.
    const outcomes: Promise<Map<string, EventOutcome> | Error> = processExecutionEvents(
      event.Records.map((record) => ({ id: record.messageId, body: record.body })),
      deps,
    ).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    const recordHandler = async (record: SQSRecord): Promise<void> => {
      const result = await outcomes;
      if (result instanceof Error) throw result;
      const outcome = result.get(record.messageId);
      if (!outcome) throw new MovaError("analysis_failed", "the message was not processed");
      if (outcome.status === "failed") throw new MovaError(outcome.code, outcome.message);
    };
    try {
      return await processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), {
        ...(context ? { context } : {}),
        processInParallel: true,
        throwOnFullBatchFailure: false,
      });
    } finally {
      deps.metrics?.publishStoredMetrics();
    }
  };
}

export interface ScheduledEvent {
  source?: string;
  "detail-type"?: string;
  time?: string;
}

export type BatchAnalysisResult = SQSBatchResponse | { runId: string; figures: AnalysisRunFigures };

function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as { Records?: unknown })?.Records;
  return Array.isArray(records) && records.every((r) => (r as SQSRecord)?.eventSource === "aws:sqs");
}

export function createBatchAnalysisHandler(
  deps: AnalysisDeps,
): (event: SQSEvent | ScheduledEvent, context?: Context) => Promise<BatchAnalysisResult> {
  const batchDeps = () => ({
    history: deps.history,
    patterns: deps.patterns,
    logger: deps.logger,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.settleMs !== undefined ? { settleMs: deps.settleMs } : {}),
  });
  return async (event, context) => {
    try {
      if (isSqsEvent(event)) {
        const recordHandler = async (record: SQSRecord): Promise<void> => {
          let json: unknown;
          try {
            json = JSON.parse(record.body);
          } catch {
            throw new MovaError("invalid_run_message", "the run message is not JSON");
          }
          const message = AnalysisRunMessageSchema.safeParse(json);
          if (!message.success) throw new MovaError("invalid_run_message", message.error.message);
          const run = await executeAnalysisRun(message.data, { ...batchDeps(), runs: deps.runs });
          deps.logger.info("analysis run finished", { runId: run.runId, status: run.status });
        };
        return await processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), {
          ...(context ? { context } : {}),
          processInParallel: false,
          throwOnFullBatchFailure: false,
        });
      }
      const now = deps.now ?? Date.now;
      const runId = `scheduled_${new Date(now())
        .toISOString()
        .replace(/[^0-9]/g, "")
        .slice(0, 14)}`;
      const figures = await runBatchAnalysis(
        { timeRangeDays: deps.config.ANALYSIS_WINDOW_DAYS },
        runId,
        batchDeps(),
      );
      deps.logger.info("scheduled analysis finished", { runId, ...figures });
      return { runId, figures };
    } finally {
      deps.metrics?.publishStoredMetrics();
    }
  };
}
