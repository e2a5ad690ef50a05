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
import type { RunContext } from "../engine/run-options.ts";
import type { RunResult, RunState, StepRecord, UnrecordedSteps } from "../core/run.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import { isMovaError, StoreUnavailableError } from "../errors.ts";
import type {
  HistoryStore,
  RunCheckpointStore,
  RunControlStore,
  RunEventStream,
  RunQueue,
  RunTraceExporter,
} from "../ports.ts";
import { callbackUrlMaker } from "./callback-signature.ts";
import { DEFAULT_RUN_STALE_MS, handOff, watchCancel } from "./run-handoff.ts";
import { createRunEventSink } from "./run-events.ts";
import { exportLegTrace } from "./run-tracing.ts";
import { createChildRunCollector, recordChildren } from "./child-runs.ts";
import {
  type ExecutionDeps,
  executionDepsOf,
  FINISHED_STATUSES,
  type LoadedDocument,
  newExecutionId,
  recordExecution,
  unknownProtocol,
  withOutcome,
} from "./executions.ts";

export interface RunDeps extends ExecutionDeps {
  checkpoints: RunCheckpointStore;
  runQueue: RunQueue;
  /** Wake-ups of paused runs, cancel requests (see run-handoff.ts); absent: neither. */
  runControl?: RunControlStore | undefined;
  /** `{callback.EVENT}` URLs: CALLBACK_SECRET and PUBLIC_API_URL. */
  callbacks?: { secret?: string | undefined; baseUrl?: string | undefined } | undefined;
  runStaleMs?: number | undefined;
  /** Where the run's live events go (GET /executions/{id}/events); absent: nowhere. */
  runEvents?: RunEventStream;
  /** Where each leg's OpenTelemetry spans go (run-tracing.ts); absent: nowhere. */
  runTraces?: RunTraceExporter | undefined;
}

/**
 * The durable-run service's share of a caller's deps, with the request's logger and run
 * deadline: every caller that advances runs (the API's routes, the trigger) takes the same
 * stores, so a leg started anywhere checkpoints, hands off, streams its events and exports
 * its spans alike.
 */
export function runDepsOf(
  deps: Parameters<typeof executionDepsOf>[0] &
    Pick<
      RunDeps,
      "checkpoints" | "runQueue" | "runControl" | "callbacks" | "runStaleMs" | "runEvents" | "runTraces"
    >,
  logger: Parameters<typeof executionDepsOf>[1],
  runDeadlineMs: number | undefined,
): RunDeps {
  const { checkpoints, runQueue, runControl, callbacks, runStaleMs, runEvents, runTraces } = deps;
  return {
    ...executionDepsOf(deps, logger, runDeadlineMs),
    checkpoints,
    runQueue,
    runControl,
    callbacks,
    runStaleMs,
    ...(runEvents ? { runEvents } : {}),
    runTraces,
  };
}

/** What a run's history record says of it besides its progress: fixed at its start. */
export type RunHeader = Pick<
  ExecutionRecord,
  | "tenant"
  | "executionId"
  | "document"
  | "documentVersion"
  | "protocol"
  | "trigger"
  | "sessionId"
  | "intent"
  | "redriveOf"
>;

export interface StartRunRequest {
  tenant: string;
  document: LoadedDocument;
  protocol: string;
  variables?: Record<string, unknown>;
  trigger: ExecutionRecord["trigger"];
  intent?: string;
  /** The session the run belongs to (a session message, or POST /executions with `sessionId`). */
  sessionId?: string;
  /** `session.*` and `profile.*` of the run's session, for its inline leg. */
  context?: Pick<RunContext, "session" | "profile" | "conversation">;
  /** A redrive: the state the new run starts from (a failed run's variables at its failed step). */
  initialState?: RunState;
  /** A redrive: the execution it goes on from. */
  redriveOf?: string;
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
  | {
      kind: "running";
      executionId: string;
      record: ExecutionRecord;
      /** The texts meant for the user in this leg so far (a session message answers them with its 202). */
      replies: string[];
      /** Where the run stands (a pause at a wait step says when to wake it). */
      state?: RunState;
    };

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
  const state =
    request.initialState ??
    newRunState({
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
    ...(request.sessionId !== undefined ? { sessionId: request.sessionId } : {}),
    ...(request.intent !== undefined ? { intent: request.intent } : {}),
    ...(request.redriveOf !== undefined ? { redriveOf: request.redriveOf } : {}),
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
    await handOff({ tenant: request.tenant, executionId }, state, deps);
    return { kind: "running", executionId, record: first, replies: [] };
  }
  const leg = await advanceLeg(
    {
      header,
      document: request.document,
      stored: { version, state },
      prior: { steps: [], path: [] },
      shouldPause: () => deps.clock.now() - startedMs >= options.syncBudgetMs,
      ...(request.context !== undefined ? { context: request.context } : {}),
      ...(deps.runDeadlineMs !== undefined ? { budgetMs: deps.runDeadlineMs } : {}),
    },
    deps,
  );
  if (leg.kind === "running") await handOff({ tenant: request.tenant, executionId }, leg.state, deps);
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
  /** The reply to the `input` step a `waiting_input` checkpoint waits on (a session message). */
  reply?: string;
  /** `session.*` and `profile.*` of the run's session. */
  context?: Pick<RunContext, "session" | "profile" | "conversation">;
  /** A bound on this leg's steps in flight (RUN_DEADLINE_MS): past it the run ends timed out. */
  budgetMs?: number;
  signal?: AbortSignal;
  /** An event for the `wait_event` step the run is paused at. */
  event?: { name: string; payload: unknown };
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
  const legStartMs = deps.clock.now();
  let version = leg.stored.version;
  // Read before the leg: the engine may extend the state's path array in place.
  const carriedPathLength = leg.stored.state.path.length;
  // The steps a process that died mid-leg did not get to record: they join the prior ones.
  const prior = withUnrecorded(leg.prior, leg.stored.state.unrecorded);
  const { unrecorded: _carried, ...startState } = leg.stored.state;
  const carry = carrier(prior, startState.stepCount);
  await scheduleLookAgain(header, deps);
  // A cancel request stops the run between steps and aborts its call in flight.
  const cancel = watchCancel(
    { tenant: header.tenant, executionId: header.executionId },
    deps.runControl,
    leg.signal,
  );
  await cancel.ready;
  const callbackUrl = callbackUrlMaker(deps.callbacks ?? {}, {
    tenant: header.tenant,
    executionId: header.executionId,
    expiresAt: leg.stored.state.deadlineAt,
  });
  const events = createRunEventSink({
    stream: deps.runEvents,
    tenant: header.tenant,
    executionId: header.executionId,
    logger: deps.logger,
    now: () => deps.clock.now(),
  });
  // The children of `call` and `foreach` steps, recorded (as executions of their own) before
  // the checkpoint of the step that ran them: a leg that dies or loses its run after that
  // checkpoint has recorded them, and the step is not run again to make them anew.
  const children = createChildRunCollector(header, leg.document.parsed);
  // A leg that starts the run, or resumes it from a wait, says so; a runner's next leg does not.
  if (leg.stored.state.stepCount === 0 || leg.stored.state.status !== "running") events.status("running");
  const result = await advanceRun({
    document: leg.document.parsed,
    ports: {
      llm: deps.llm,
      tools: deps.tools,
      clock: deps.clock,
      secrets: await deps.secrets.forTenant(header.tenant),
    },
    state: startState,
    executionId: header.executionId,
    ...(header.intent !== undefined ? { intent: header.intent } : {}),
    ...(leg.budgetMs !== undefined ? { budgetMs: leg.budgetMs } : {}),
    ...(cancel.signal ? { signal: cancel.signal } : {}),
    ...(callbackUrl ? { callbackUrl } : {}),
    ...(leg.event ? { event: leg.event } : {}),
    ...(leg.reply !== undefined ? { reply: leg.reply } : {}),
    ...(leg.context?.session !== undefined ? { session: leg.context.session } : {}),
    ...(leg.context?.profile !== undefined ? { profile: leg.context.profile } : {}),
    ...(leg.context?.conversation !== undefined ? { conversation: leg.context.conversation } : {}),
    checkpoint: async (state, records) => {
      await recordChildren(children.take(), deps);
      const carried = carry(state, records);
      try {
        version = await deps.checkpoints.write(header.tenant, header.executionId, version, carried);
      } catch (error) {
        // The state alone may fit where the state and the records do not: it stops carrying them.
        if (carried === state || !isMovaError(error, "state_too_large")) throw error;
        carry.stop();
        version = await deps.checkpoints.write(header.tenant, header.executionId, version, state);
      }
      carry.written();
      // Only what is checkpointed is shown as finished.
      events.stepsFinished(records);
    },
    shouldPause: leg.shouldPause,
    onChildRun: children.onChildRun,
    onStepStart: (step) => events.stepStarted(step),
    // A prompt step's reply, piece by piece as the model writes it, for the live stream.
    onToken: (stepId, delta) => events.token(stepId, delta),
  }).finally(() => cancel.stop());
  let legSteps = result.steps;
  let legPath = result.path.slice(carriedPathLength);
  if (result.checkpointError !== undefined) {
    // The run goes on from the last checkpoint written: a step past it runs again, so its
    // record is not kept now.
    legSteps = legSteps.slice(0, carry.accepted.records);
    legPath = legPath.slice(0, carry.accepted.path);
  }
  const steps = [...prior.steps, ...legSteps];
  const path = [...prior.path, ...legPath];
  if (result.checkpointError !== undefined && isMovaError(result.checkpointError, "run_conflict")) {
    // Another worker holds the run now: it records it; this leg writes nothing more.
    const record = progressRecord(header, result.state ?? startState, { steps, path }, deps.clock.now());
    await events.flush();
    return {
      kind: "running",
      executionId: header.executionId,
      record,
      replies: result.replies,
      checkpointError: result.checkpointError,
      ...(result.state ? { state: result.state } : {}),
    };
  }
  const record = withOutcome(resultRecord(header, result, { steps, path }), leg.document.parsed, result);
  // Before the parent's record, so that a child its record lists is there to read: the
  // children of a step whose checkpoint failed. They ran, and the step run again makes the
  // same ids, which the history keeps once.
  await recordChildren(children.take(), deps);
  let analysis: ExecutionRecord["analysis"];
  try {
    ({ analysis } = await recordExecution(record, deps));
  } catch (error) {
    // The checkpoint stands but the record could not follow (history unreachable): the run
    // goes to the runner, which goes on from the checkpoint or, finished, records it. The
    // caller still learns of the failure.
    if (error instanceof StoreUnavailableError && record.status !== "waiting_input") {
      await deps.runQueue
        .enqueue({ tenant: header.tenant, executionId: header.executionId })
        .catch((cause: unknown) =>
          deps.logger?.error("a run whose record failed could not be enqueued either", {
            executionId: header.executionId,
            error: describe(cause),
          }),
        );
    }
    throw error;
  }
  // After the record: a follower told the run ended finds it ended in the history.
  if (result.status !== "running") events.status(result.status, result.error);
  await events.flush();
  // Spans are derived from the leg's records once they are recorded; exporting never fails a run.
  await exportLegTrace(
    deps.runTraces,
    {
      tenant: header.tenant,
      executionId: header.executionId,
      document: header.document,
      documentVersion: header.documentVersion,
      protocol: header.protocol,
      status: record.status,
      error: record.error,
      steps: legSteps,
      startMs: legStartMs,
      endMs: deps.clock.now(),
      // The one LLM adapter speaks the OpenAI API (OpenAI, OpenRouter, compatible servers).
      system: "openai",
    },
    deps.logger,
  );
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
      replies: result.replies,
      ...(result.state ? { state: result.state } : {}),
      ...(result.checkpointError !== undefined ? { checkpointError: result.checkpointError } : {}),
    };
  }
  return { kind: "finished", executionId: header.executionId, result, record: recorded };
}

/**
 * Records a run whose checkpoint finished but whose history record still says it goes on: the
 * process that advanced it died between its last checkpoint write and its history write. The
 * record gets the status, output and error the checkpoint holds, and is published once (the
 * caller holds the run's lease, and the history refuses a second finished record). The step
 * records of that last leg are the ones its checkpoint carries; past their bound (a very long
 * leg) the path goes on with the checkpoint's tail of step ids.
 */
export async function recordFinishedCheckpoint(
  record: ExecutionRecord,
  state: RunState,
  document: LoadedDocument,
  deps: RunDeps,
): Promise<ExecutionRecord> {
  const prior = withUnrecorded(await priorOf(deps.history, record), state.unrecorded);
  const nowMs = deps.clock.now();
  const missing = Math.max(0, state.stepCount - prior.path.length);
  const finished: ExecutionRecord = {
    ...headerOf(record),
    status: state.status as ExecutionRecord["status"],
    startedAt: state.startedAt,
    finishedAt: new Date(nowMs).toISOString(),
    durationMs: Math.max(0, nowMs - Date.parse(state.startedAt)),
    path: [...prior.path, ...state.path.slice(Math.max(0, state.path.length - missing))],
    steps: prior.steps,
    unresolved: state.unresolved,
    offline: state.offline,
    analysis: "published",
  };
  if (state.error !== undefined) finished.error = state.error;
  if (state.output !== undefined) finished.output = state.output;
  const judged = withOutcome(finished, document.parsed, {
    status: state.status,
    variables: state.variables,
    output: state.output,
  });
  const { analysis } = await recordExecution(judged, deps);
  return { ...judged, analysis };
}

/**
 * How many bytes of a leg's step records a checkpoint carries until the history record has
 * them: a short leg's (some 50 ordinary step records) fit whole, and a checkpoint stays
 * within 16 KiB of its state (BENCHMARKS.md section 6: a 16 KiB state's write p50 2.25 ms
 * against 1.98 ms for a small one).
 */
export const UNRECORDED_MAX_BYTES = 16_384;

/**
 * Before a leg runs, the run is put in the sweep's schedule RUN_STALE_MS ahead: if the process
 * advancing it dies before it hands the run on or records its end (an API request or a trigger
 * killed mid-leg), the sweep finds it `running` with nobody's lease and enqueues it, so no run
 * is left `running` with nobody to advance it. A leg that ends, hands on or pauses the run
 * moves or drops that entry (or the sweep drops it). An unreachable store only loses this net:
 * the leg goes on.
 */
async function scheduleLookAgain(header: RunHeader, deps: RunDeps): Promise<void> {
  if (!deps.runControl) return;
  const message = { tenant: header.tenant, executionId: header.executionId };
  try {
    await deps.runControl.schedule(message, deps.clock.now() + (deps.runStaleMs ?? DEFAULT_RUN_STALE_MS));
  } catch (error) {
    deps.logger?.warn("the run could not be put in the sweep's schedule", {
      executionId: header.executionId,
      error: describe(error),
    });
  }
}

/**
 * Adds the step records a checkpoint carries to the history record's, but those the history
 * record has already (written at or after that checkpoint).
 */
function withUnrecorded(
  prior: { steps: StepRecord[]; path: string[] },
  unrecorded: UnrecordedSteps | undefined,
): { steps: StepRecord[]; path: string[] } {
  if (!unrecorded) return prior;
  // The history record holds the first (its count - `from`) of them when it was written during
  // or after that leg; the rest are added.
  const heldSteps = prior.steps.length - unrecorded.from;
  const heldPath = prior.path.length - unrecorded.pathFrom;
  if (heldSteps < 0 || heldSteps > unrecorded.records.length) return prior;
  if (heldPath < 0 || heldPath > unrecorded.path.length) return prior;
  return {
    steps: [...prior.steps, ...unrecorded.records.slice(heldSteps)],
    path: [...prior.path, ...unrecorded.path.slice(heldPath)],
  };
}

/**
 * The state a leg checkpoints: the engine's, with the leg's step records and step ids so far
 * while they stay under UNRECORDED_MAX_BYTES; past that, the state alone (a crash then loses
 * that leg's records, never its steps' effects or its path's count).
 */
function carrier(prior: { steps: StepRecord[]; path: string[] }, startCount: number) {
  const records: StepRecord[] = [];
  const path: string[] = [];
  let bytes = 0;
  let stepCount = startCount;
  let carrying = true;
  /** What the last accepted checkpoint covers of this leg: step records and path ids. */
  const accepted = { records: 0, path: 0 };
  let offered = { records: 0, path: 0 };
  const carry = (state: RunState, stepRecords: StepRecord[]): RunState => {
    const entered = Math.max(0, state.stepCount - stepCount);
    stepCount = state.stepCount;
    offered = { records: accepted.records + stepRecords.length, path: accepted.path + entered };
    if (!carrying) return state;
    for (const record of stepRecords) bytes += JSON.stringify(record).length;
    if (bytes > UNRECORDED_MAX_BYTES || entered > state.path.length) {
      carrying = false;
      return state;
    }
    records.push(...stepRecords);
    if (entered > 0) path.push(...state.path.slice(-entered));
    const unrecorded: UnrecordedSteps = {
      from: prior.steps.length,
      pathFrom: prior.path.length,
      records: [...records],
      path: [...path],
    };
    return { ...state, unrecorded };
  };
  return Object.assign(carry, {
    stop() {
      carrying = false;
    },
    /** The checkpoint last offered was written. */
    written() {
      accepted.records = offered.records;
      accepted.path = offered.path;
    },
    accepted,
  });
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
    ...(record.redriveOf !== undefined ? { redriveOf: record.redriveOf } : {}),
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
