/**
 * Recording executions for every caller (the durable runs of the API, sessions, the runner
 * and the event trigger, lib/services/runs.ts): for a finished run it writes history and
 * publishes the execution event concurrently. A publish failure never loses the execution (it
 * is saved with `analysis: "pending"` for the batch analysis); a history failure is reported
 * (503 `history_unavailable`), never a silent success. No run is lost to its size: the history
 * keeps a long run's step records in pages and the event carries its summary
 * (lib/core/record-size.ts).
 */
import { MovaError, StoreUnavailableError } from "../errors.ts";
import { randomUUID } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Clock, LlmPort, TenantSecretsPort, ToolPort } from "../ports.ts";
import type { RunResult } from "../core/run.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { MovaDocument } from "../mova/schema.ts";
import { runOutcome } from "../mova/success.ts";
import type { EventPublisher, HistoryStore, StoredDocument } from "../ports.ts";

/** A stored document with its parsed (validated, normalised) form. */
export interface LoadedDocument {
  stored: Omit<StoredDocument, "source"> & { source?: unknown };
  parsed: MovaDocument;
}

export interface ExecutionDeps {
  llm: LlmPort;
  tools: ToolPort;
  /** Each tenant's secrets: a run reads only its document's tenant's. */
  secrets: TenantSecretsPort;
  clock: Clock;
  history: HistoryStore;
  publisher: EventPublisher;
  logger?: Logger;
  /**
   * The per-request time budget (kept below the Lambda timeout): RUN_DEADLINE_MS. It bounds
   * one request's leg of a run, never the run's own deadline (the protocol's `deadline_ms`).
   */
  runDeadlineMs?: number;
  /** Tries of a failed history write before giving up with 503 (the write is conditional, so safe to repeat). */
  historyWriteAttempts?: number;
}

/** A protocol name the document does not declare (HTTP 422 `unknown_protocol`). */
export const unknownProtocol = (protocol: string) =>
  new MovaError("unknown_protocol", `the document has no protocol "${protocol}"`);

export const FINISHED_STATUSES: ReadonlySet<string> = new Set([
  "completed",
  "failed",
  "timed_out",
  "cancelled",
]);

export function newExecutionId(): string {
  // Time first, so ids sort roughly by creation in listings and logs.
  return `ex_${Date.now().toString(36)}${randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** The execution service's share of a caller's deps, with the request's logger and run deadline. */
export function executionDepsOf(
  deps: Pick<ExecutionDeps, "llm" | "tools" | "secrets" | "clock" | "history" | "publisher">,
  logger: Logger | undefined,
  runDeadlineMs: number | undefined,
): ExecutionDeps {
  const { llm, tools, secrets, clock, history, publisher } = deps;
  return { llm, tools, secrets, clock, history, publisher, logger, runDeadlineMs };
}

/**
 * Saves an execution: a waiting run is written to history (replaced as it goes on) and not
 * published; a finished run is written and published at the same time.
 */
export async function recordExecution(
  record: ExecutionRecord,
  deps: ExecutionDeps,
): Promise<{ analysis: ExecutionRecord["analysis"] }> {
  const attempts = Math.max(1, deps.historyWriteAttempts ?? 3);
  if (!FINISHED_STATUSES.has(record.status)) {
    await writeHistory(() => deps.history.putExecution(record), attempts, deps, record);
    return { analysis: record.analysis };
  }
  const published: ExecutionRecord = { ...record, analysis: "published" };
  const [written, publish] = await Promise.allSettled([
    writeHistory(() => deps.history.putExecution(published), attempts, deps, record),
    deps.publisher.publishExecution(published),
  ]);
  if (written.status === "rejected") throw written.reason;
  if (publish.status === "fulfilled") return { analysis: "published" };

  deps.logger?.warn("execution event not published; marked pending for the batch analysis", {
    executionId: record.executionId,
    error: describe(publish.reason),
  });
  await writeHistory(
    () => deps.history.markAnalysis(record.tenant, record.executionId, "pending"),
    attempts,
    deps,
    record,
  );
  return { analysis: "pending" };
}

/** The record with its outcome when the run completed (the protocol's `success` criteria on its final variables). */
export function withOutcome(
  record: ExecutionRecord,
  document: MovaDocument,
  result: Pick<RunResult, "status" | "variables" | "output">,
): ExecutionRecord {
  if (result.status !== "completed") return record;
  const protocol = document.protocols.find((p) => p.name === record.protocol);
  return { ...record, outcome: runOutcome(protocol, result.variables, result.output) };
}

async function writeHistory(
  write: () => Promise<void>,
  attempts: number,
  deps: ExecutionDeps,
  record: ExecutionRecord,
): Promise<void> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await write();
      return;
    } catch (error) {
      // Only an unreachable store is worth another try; a refused write (a finished record
      // already there) would be refused again.
      if (!(error instanceof StoreUnavailableError)) throw error;
      lastError = error;
      deps.logger?.warn("history write failed", {
        executionId: record.executionId,
        attempt,
        error: describe(error),
      });
      if (attempt < attempts) await deps.clock.sleep(50 * 2 ** (attempt - 1));
    }
  }
  throw new StoreUnavailableError("history_unavailable", "the execution history could not be written", {
    cause: lastError,
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
