/**
 * The one place that runs a protocol for any caller (the API, a session message, an event
 * trigger): it runs the engine, builds the history record, and for a finished run writes
 * history and publishes the execution event concurrently. A publish failure never loses the
 * execution (it is saved with `analysis: "pending"` for the batch analysis); a history
 * failure is reported (503 `history_unavailable`), never a silent success. No run is lost to
 * its size: the history keeps a long run's step records in pages and the event carries its
 * summary (lib/core/record-size.ts).
 */
import { MovaError, StoreUnavailableError } from "../errors.ts";
import { randomUUID } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import { resumeRun, runProtocol } from "../engine/engine.ts";
import type { Clock, LlmPort, TenantSecretsPort, ToolPort } from "../ports.ts";
import type { RunContext } from "../engine/run-options.ts";
import type { RunResult, SuspendedRun } from "../core/run.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { MovaDocument } from "../mova/schema.ts";
import { runOutcome } from "../mova/success.ts";
import type { EventPublisher, HistoryStore, StoredDocument } from "../ports.ts";

type Trigger = ExecutionRecord["trigger"];

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

interface ExecuteRequest extends RunContext {
  tenant: string;
  document: LoadedDocument;
  protocol: string;
  variables?: Record<string, unknown>;
  sessionId?: string;
  trigger: Trigger;
  /** Keeps an id across a suspended run's turns; a new one is made otherwise. */
  executionId?: string;
  /** Resume this suspended run with the user's reply instead of starting a new run. */
  resume?: { suspended: SuspendedRun; reply: string };
}

export interface ExecutionOutcome {
  executionId: string;
  result: RunResult;
  record: ExecutionRecord;
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

/** Runs the engine only (no history, no publishing): callers that must commit other state first use this. */
export async function runExecution(request: ExecuteRequest, deps: ExecutionDeps): Promise<ExecutionOutcome> {
  const { document } = request;
  const protocol = document.parsed.protocols.find((p) => p.name === request.protocol);
  if (!protocol) throw unknownProtocol(request.protocol);
  const executionId = request.executionId ?? newExecutionId();
  const secrets = await deps.secrets.forTenant(request.tenant);
  const ports = { llm: deps.llm, tools: deps.tools, clock: deps.clock, secrets };
  const context: RunContext = {
    session: request.session,
    profile: request.profile,
    intent: request.intent,
    ...(request.conversation && { conversation: request.conversation }),
  };
  const limits = { executionId, ...(deps.runDeadlineMs !== undefined && { budgetMs: deps.runDeadlineMs }) };
  const result = request.resume
    ? await resumeRun({
        document: document.parsed,
        ports,
        ...context,
        ...limits,
        suspended: request.resume.suspended,
        reply: request.resume.reply,
      })
    : await runProtocol({
        document: document.parsed,
        protocol: protocol.name,
        variables: request.variables ?? {},
        ports,
        ...context,
        ...limits,
      });
  const record = buildExecutionRecord(request, executionId, result);
  deps.logger?.debug("protocol run ended", {
    executionId,
    protocol: protocol.name,
    status: result.status,
    durationMs: result.durationMs,
  });
  return { executionId, result, record };
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

/** Runs a protocol and records it: what the API's POST /executions and the event trigger call. */
export async function executeProtocol(
  request: ExecuteRequest,
  deps: ExecutionDeps,
): Promise<ExecutionOutcome> {
  const outcome = await runExecution(request, deps);
  const { analysis } = await recordExecution(outcome.record, deps);
  return { ...outcome, record: { ...outcome.record, analysis } };
}

function buildExecutionRecord(
  request: Pick<ExecuteRequest, "tenant" | "document" | "sessionId" | "trigger" | "intent">,
  executionId: string,
  result: RunResult,
): ExecutionRecord {
  const record: ExecutionRecord = {
    tenant: request.tenant,
    executionId,
    document: request.document.stored.name,
    documentVersion: request.document.stored.version,
    protocol: result.protocol,
    trigger: request.trigger,
    status: result.status,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    durationMs: result.durationMs,
    path: result.path,
    // Outputs are capped by the history store (HISTORY_OUTPUT_MAX_BYTES), which owns the item size.
    steps: result.steps,
    unresolved: result.unresolved,
    offline: result.offline,
    // A waiting run is not published until it finishes.
    analysis: FINISHED_STATUSES.has(result.status) ? "published" : "waiting",
  };
  if (request.sessionId !== undefined) record.sessionId = request.sessionId;
  if (request.intent !== undefined) record.intent = request.intent;
  if (result.error !== undefined) record.error = result.error;
  if (result.output !== undefined) record.output = result.output;
  return withOutcome(record, request.document.parsed, result);
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
