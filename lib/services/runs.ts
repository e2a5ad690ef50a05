/**
 * Durable runs: one service advances a run for every caller that runs it durably (today
 * POST /executions without a session, and the runner). A run has its history record
 * (`running`) and its checkpoint (Redis, version 1) from its first moment; every step's state
 * is written by one versioned CAS write (RunCheckpointStore.write). A leg of a run ends when
 * the run finishes, waits for input, or the caller's `shouldPause` says so (the API's
 * SYNC_BUDGET_MS, the runner's remaining time): a finished run is recorded and published as
 * any execution (recordExecution: the analysis only ever sees finished runs); a paused one
 * has its `running` record rewritten with the steps so far and is handed to the runner (a
 * message on the runs queue).
 */
import { advanceRun } from "../engine/engine.ts";
import { newRunState } from "../engine/run-state.ts";
import type { RunResult, RunState, StepRecord } from "../core/run.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import { isMovaError } from "../errors.ts";
import type { HistoryStore, RunCheckpointStore, RunEventStream, RunQueue } from "../ports.ts";
import { createRunEventSink } from "./run-events.ts";
import {
  type ExecutionDeps,
  FINISHED_STATUSES,
  type LoadedDocument,
  newExecutionId,
  recordExecution,
  unknownProtocol,
} from "./executions.ts";

export interface RunDeps extends ExecutionDeps {
  checkpoints: RunCheckpointStore;
  runQueue: RunQueue;
  /** Where the run's live events go (GET /executions/{id}/events); absent: nowhere. */
  runEvents?: RunEventStream;
}

/** What a run's history record says of it besides its progress: fixed at its start. */
export type RunHeader = Pick<
  ExecutionRecord,
  "tenant" | "executionId" | "document" | "documentVersion" | "protocol" | "trigger" | "sessionId" | "intent"
>;

export interface StartRunRequest {
  tenant: string;
  document: LoadedDocument;
  protocol: string;
  variables?: Record<string, unknown>;
  trigger: ExecutionRecord["trigger"];
  intent?: string;
}

export interface StartRunOptions {
  /** Advance inline until this much time passed (SYNC_BUDGET_MS), asked between steps. */
  syncBudgetMs: number;
  /** `Prefer: respond-async`: create and enqueue the run, advance nothing inline. */
  respondAsync?: boolean;
}

/** How a leg of a run ended, as its caller answers it. */
export type RunOutcome =
  | { kind: "finished"; executionId: string; result: RunResult; record: ExecutionRecord }
  | { kind: "running"; executionId: string; record: ExecutionRecord };

/**
 * Creates a run (history record `running`, checkpoint version 1) and advances it inline
 * within `syncBudgetMs`; a run not finished by then is enqueued for the runner.
 */
export async function startRun(
  request: StartRunRequest,
  deps: RunDeps,
  options: StartRunOptions,
): Promise<RunOutcome> {
  const parsed = request.document.parsed;
  if (!parsed.protocols.some((p) => p.name === request.protocol)) throw unknownProtocol(request.protocol);
  const executionId = newExecutionId();
  const startedMs = deps.clock.now();
  const state = newRunState({
    document: parsed,
    protocol: request.protocol,
    variables: request.variables ?? {},
    now: startedMs,
  });
  const header: RunHeader = {
    tenant: request.tenant,
    executionId,
    document: request.document.stored.name,
    documentVersion: request.document.stored.version,
    protocol: state.protocol,
    trigger: request.trigger,
    ...(request.intent !== undefined ? { intent: request.intent } : {}),
  };
  const first = progressRecord(header, state, { steps: [], path: [] }, startedMs);
  await recordExecution(first, deps);
  let version: number;
  try {
    ({ version } = await deps.checkpoints.create(request.tenant, executionId, state));
  } catch (error) {
    // No run without its checkpoint: the record says why it never started.
    const code = isMovaError(error) ? error.code : "run_store_unavailable";
    const failed: ExecutionRecord = {
      ...first,
      status: "failed",
      error: { code, message: `the run's first checkpoint could not be written: ${describe(error)}` },
      analysis: "published",
    };
    await recordExecution(failed, deps).catch((cause: unknown) =>
      deps.logger?.warn("the failed run could not be recorded", { executionId, error: describe(cause) }),
    );
    throw error;
  }
  deps.logger?.appendKeys({ executionId });
  if (options.respondAsync) {
    await deps.runQueue.enqueue({ tenant: request.tenant, executionId });
    return { kind: "running", executionId, record: first };
  }
  const leg = await advanceLeg(
    {
      header,
      document: request.document,
      stored: { version, state },
      prior: { steps: [], path: [] },
      shouldPause: () => deps.clock.now() - startedMs >= options.syncBudgetMs,
      ...(deps.runDeadlineMs !== undefined ? { budgetMs: deps.runDeadlineMs } : {}),
    },
    deps,
  );
  if (leg.kind === "running") await deps.runQueue.enqueue({ tenant: request.tenant, executionId });
  return leg;
}

export interface LegRequest {
  header: RunHeader;
  document: LoadedDocument;
  /** The checkpoint the leg starts from (the caller holds the run: it is new, or leased). */
  stored: { version: number; state: RunState };
  /** The run's step records and path before this leg (from its history record). */
  prior: { steps: StepRecord[]; path: string[] };
  shouldPause: () => boolean;
  /** A bound on this leg's steps in flight (RUN_DEADLINE_MS): past it the run ends timed out. */
  budgetMs?: number;
  signal?: AbortSignal;
}

/**
 * Advances a run from its checkpoint until it finishes, waits for input or pauses, writing
 * each step's state with the checkpoint's version (a run taken over by another worker stops
 * at its next write with `run_conflict` in `checkpointError`). Records the run: finished, as
 * any execution (history and the analysis); otherwise its `running` or `waiting_input`
 * record with the steps so far. Enqueuing a paused run is the caller's.
 */
export async function advanceLeg(
  leg: LegRequest,
  deps: RunDeps,
): Promise<RunOutcome & { checkpointError?: unknown }> {
  const { header } = leg;
  let version = leg.stored.version;
  // Read before the leg: the engine may extend the state's path array in place.
  const carriedPathLength = leg.stored.state.path.length;
  const events = createRunEventSink({
    stream: deps.runEvents,
    tenant: header.tenant,
    executionId: header.executionId,
    logger: deps.logger,
    now: () => deps.clock.now(),
  });
  // A leg that starts the run, or resumes it from a wait, says so; a runner's next leg does not.
  if (leg.stored.state.stepCount === 0 || leg.stored.state.status !== "running") events.status("running");
  const result = await advanceRun({
    document: leg.document.parsed,
    ports: { llm: deps.llm, tools: deps.tools, clock: deps.clock, secrets: deps.secrets },
    state: leg.stored.state,
    executionId: header.executionId,
    ...(header.intent !== undefined ? { intent: header.intent } : {}),
    ...(leg.budgetMs !== undefined ? { budgetMs: leg.budgetMs } : {}),
    ...(leg.signal ? { signal: leg.signal } : {}),
    checkpoint: async (state, records) => {
      version = await deps.checkpoints.write(header.tenant, header.executionId, version, state);
      // Only what is checkpointed is shown as finished.
      events.stepsFinished(records);
    },
    shouldPause: leg.shouldPause,
    onStepStart: (step) => events.stepStarted(step),
  });
  const legPath = result.path.slice(carriedPathLength);
  const steps = [...leg.prior.steps, ...result.steps];
  const path = [...leg.prior.path, ...legPath];
  if (result.checkpointError !== undefined && isMovaError(result.checkpointError, "run_conflict")) {
    // Another worker holds the run now: it records it; this leg writes nothing more.
    const record = progressRecord(
      header,
      result.state ?? leg.stored.state,
      { steps, path },
      deps.clock.now(),
    );
    await events.flush();
    return {
      kind: "running",
      executionId: header.executionId,
      record,
      checkpointError: result.checkpointError,
    };
  }
  const record = resultRecord(header, result, { steps, path });
  const { analysis } = await recordExecution(record, deps);
  // After the record: a follower told the run ended finds it ended in the history.
  if (result.status !== "running") events.status(result.status, result.error);
  await events.flush();
  deps.logger?.debug("run leg ended", {
    executionId: header.executionId,
    status: result.status,
    steps: result.steps.length,
  });
  const recorded = { ...record, analysis };
  if (result.status === "running") {
    return {
      kind: "running",
      executionId: header.executionId,
      record: recorded,
      ...(result.checkpointError !== undefined ? { checkpointError: result.checkpointError } : {}),
    };
  }
  return { kind: "finished", executionId: header.executionId, result, record: recorded };
}

/** The run's every step record so far, from its history record (a long run's from its pages). */
export async function priorOf(
  history: HistoryStore,
  record: ExecutionRecord,
): Promise<{ steps: StepRecord[]; path: string[] }> {
  if (record.stepCount === undefined) return { steps: record.steps as StepRecord[], path: record.path };
  const steps: StepRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await history.getSteps(record.tenant, record.executionId, {
      limit: 100,
      ...(cursor !== undefined ? { cursor } : {}),
    });
    if (!page) break;
    steps.push(...(page.steps as StepRecord[]));
    cursor = page.cursor;
  } while (cursor !== undefined);
  // A long run's record keeps the first ids of its path only; the step records' ids stand in.
  const path = record.pathLength !== undefined ? steps.map((step) => step.id) : record.path;
  return { steps, path };
}

export function headerOf(record: ExecutionRecord): RunHeader {
  return {
    tenant: record.tenant,
    executionId: record.executionId,
    document: record.document,
    documentVersion: record.documentVersion,
    protocol: record.protocol,
    trigger: record.trigger,
    ...(record.sessionId !== undefined ? { sessionId: record.sessionId } : {}),
    ...(record.intent !== undefined ? { intent: record.intent } : {}),
  };
}

/** A run's record while it goes on: status `running` (or `waiting_input`), never published. */
function progressRecord(
  header: RunHeader,
  state: RunState,
  so: { steps: StepRecord[]; path: string[] },
  nowMs: number,
): ExecutionRecord {
  return {
    ...header,
    status: state.status === "waiting_input" ? "waiting_input" : "running",
    startedAt: state.startedAt,
    finishedAt: new Date(nowMs).toISOString(),
    durationMs: Math.max(0, nowMs - Date.parse(state.startedAt)),
    path: so.path,
    steps: so.steps,
    unresolved: state.unresolved,
    offline: state.offline,
    analysis: "waiting",
  };
}

function resultRecord(
  header: RunHeader,
  result: RunResult,
  so: { steps: StepRecord[]; path: string[] },
): ExecutionRecord {
  const record: ExecutionRecord = {
    ...header,
    status: result.status,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    durationMs: result.durationMs,
    path: so.path,
    steps: so.steps,
    unresolved: result.unresolved,
    offline: result.offline,
    analysis: FINISHED_STATUSES.has(result.status) ? "published" : "waiting",
  };
  // A paused run's error is its checkpoint's failure, not the run's: it goes on.
  if (result.error !== undefined && result.status !== "running") record.error = result.error;
  if (result.output !== undefined && FINISHED_STATUSES.has(result.status)) record.output = result.output;
  return record;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
