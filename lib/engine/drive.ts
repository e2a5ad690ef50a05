/**
 * The run loop: steps one after another, a checkpoint after each (durable runs), until the
 * run ends, waits, is paused or a checkpoint fails; then the run's result.
 */
import { type MovaError, isMovaError } from "../errors.ts";
import type { Step } from "../mova/schema.ts";
import type { RunResult, RunState, RunStatus, StepError, StepRecord, SuspendedRun } from "../core/run.ts";
import { type Carried, LiveRun } from "./live-run.ts";
import type { Protocol } from "../mova/schema.ts";
import type { SuspendOutcome, Transition } from "./flow.ts";
import { endOfFlow, stopped, transitionOf } from "./transitions.ts";
import { executeStep } from "./steps/execute-step.ts";
import { applyOnError } from "./on-error.ts";

/** The step to run next, or why the run ends before it. */
export function nextStep(state: LiveRun, stepId: string): { step: Step } | { end: Transition } {
  const kind = state.stopKind();
  if (kind) return { end: stopped(kind) };
  if (state.stepCount >= state.maxSteps) {
    const error = { code: "max_steps", message: `the run stopped after ${state.maxSteps} steps` };
    return { end: { kind: "end", status: "failed", error } };
  }
  const step = state.step(stepId);
  if (step) return { step };
  const error = { code: "unknown_reference", message: `the step "${stepId}" does not exist` };
  return { end: { kind: "end", status: "failed", error } };
}

export interface Ending {
  transition: Transition;
  /** The checkpoint hook threw: the run stops `running` at the last state it accepted. */
  checkpointError?: unknown;
}

export function finish(state: LiveRun, ending: Ending): RunResult {
  state.dispose();
  const { transition, checkpointError } = ending;
  const failedCheckpoint = "checkpointError" in ending;
  let status: RunStatus = failedCheckpoint || transition.kind === "next" ? "running" : transition.status;
  // runProtocol and resumeRun report a cancelled run as they always did.
  if (status === "cancelled" && !state.mode.durable) status = "failed";
  const finishedMs = state.clock.now();
  const result: RunResult = {
    status,
    protocol: state.protocol.name,
    output: state.lastOutput,
    // Copied below with the rest of the result.
    variables: state.variables,
    steps: state.steps,
    path: state.path,
    unresolved: state.unresolved,
    replies: state.replies,
    startedAt: state.startedAt,
    finishedAt: new Date(finishedMs).toISOString(),
    durationMs: Math.max(0, finishedMs - Date.parse(state.startedAt)),
    offline: state.offline,
  };
  if (failedCheckpoint) result.error = checkpointFailure(checkpointError);
  else if (transition.kind === "end" && transition.error) result.error = transition.error;
  const suspend = !failedCheckpoint && transition.kind === "end" ? transition.suspend : undefined;
  const pause = !failedCheckpoint && transition.kind === "end" ? transition.pause : undefined;
  if (pause) result.pausedAt = { stepId: pause.step.id, pause: pause.pause };
  if (suspend) {
    const { step, prompt } = suspend;
    result.waitingFor = { stepId: step.id, prompt, variable: step.variable };
    if (!state.mode.durable) result.suspended = suspendedRunOf(state, suspend);
  }
  if (state.mode.durable) {
    const saved = state.mode.checkpoint ? state.saved : undefined;
    result.state = failedCheckpoint || saved ? saved : state.snapshot(transition);
  }
  // The redacted copy is also a deep copy: the result shares nothing with the run's state.
  const redacted = state.redactor.redact(result);
  if (failedCheckpoint) redacted.checkpointError = checkpointError;
  return redacted;
}

export function checkpointFailure(error: unknown): StepError {
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: isMovaError(error) ? error.code : "checkpoint_failed",
    message: `the run's checkpoint could not be written: ${message}`,
  };
}

/** The session's form of a run waiting for input: every record so far, the whole path. */
export function suspendedRunOf(state: LiveRun, suspend: SuspendOutcome): SuspendedRun {
  return {
    v: 1,
    protocol: state.protocol.name,
    stepId: suspend.step.id,
    variables: state.variables,
    path: state.path,
    steps: state.steps,
    stepCount: state.stepCount,
    unresolved: state.unresolved,
    startedAt: state.startedAt,
    deadlineAt: state.deadlineAt,
    offline: state.offline,
    secretNames: state.redactor.names,
    waiting: {
      prompt: suspend.prompt,
      since: suspend.since,
      ...(suspend.failedReplies !== undefined && { failedReplies: suspend.failedReplies }),
    },
    visits: { ...state.visits },
  };
}

/**
 * Hands the state after `transition` to the checkpoint hook. Answers the ending when the run
 * must stop here for it: the hook failed, or it refused a state too large (the step fails).
 */
export async function checkpoint(state: LiveRun, transition: Transition): Promise<Ending | undefined> {
  const hook = state.mode.checkpoint;
  if (!hook) return undefined;
  const snapshot = state.snapshot(transition);
  const records = state.takePending();
  try {
    await hook(snapshot, records);
    state.saved = snapshot;
    return undefined;
  } catch (error) {
    if (!isMovaError(error, "state_too_large")) return { transition, checkpointError: error };
    return failTooLarge(state, error, records);
  }
}

/**
 * The step made the state too large to checkpoint: it fails with `state_too_large`, and the
 * run ends failed with the variables of the last state that was accepted (which fit).
 */
export async function failTooLarge(state: LiveRun, error: MovaError, records: StepRecord[]): Promise<Ending> {
  const stepId = state.path.at(-1) ?? "";
  const cause: StepError = { code: "state_too_large", message: error.message };
  const transition: Transition = {
    kind: "end",
    status: "failed",
    error: { code: cause.code, message: `step "${stepId}" failed: ${cause.message}` },
  };
  const last = records.at(-1);
  const failedRecords = records.slice(0, -1);
  if (last) {
    failedRecords.push({ ...last, status: "failed", error: cause });
    const kept = state.steps.at(-1);
    if (state.mode.keepSteps && kept?.id === last.id) {
      kept.status = "failed";
      kept.error = cause;
    }
  }
  const snapshot = state.snapshot(transition);
  if (state.saved) snapshot.variables = state.saved.variables;
  delete snapshot.output;
  try {
    await state.mode.checkpoint?.(snapshot, failedRecords);
    state.saved = snapshot;
    return { transition };
  } catch (again) {
    return { transition, checkpointError: again };
  }
}

/**
 * Runs steps from `first` on. `settled`: `first` is where the caller's state already stands
 * (nothing to checkpoint); otherwise it ends a step (an input's reply) that needs its checkpoint.
 */
export async function drive(state: LiveRun, first: Transition, settled: boolean): Promise<RunResult> {
  // Given here, not imported by the step, so that step files need not import the loop.
  state.runChild = runChild;
  let transition = first;
  let checkpointDue = !settled;
  try {
    for (;;) {
      if (checkpointDue) {
        const stop = await checkpoint(state, transition);
        if (stop) return finish(state, stop);
        if (transition.kind === "next" && state.mode.shouldPause?.()) return finish(state, { transition });
      }
      if (transition.kind === "end") return finish(state, { transition });
      const next = nextStep(state, transition.stepId);
      checkpointDue = true;
      if ("end" in next) {
        transition = next.end;
        continue;
      }
      state.enter(next.step);
      transition = transitionOf(state, applyOnError(state, next.step, await executeStep(state, next.step)));
    }
  } finally {
    state.dispose();
  }
}

/** Where a run starts: its first step, or (an empty flow) its end. */
export function startOf(state: LiveRun, stepId: string | undefined): Transition {
  return stepId === undefined ? endOfFlow(state) : { kind: "next", stepId };
}

export function carriedOf(state: RunState): Carried {
  return {
    variables: state.variables,
    path: state.path,
    steps: [],
    unresolved: state.unresolved,
    stepCount: state.stepCount,
    visits: state.visits,
    startedAt: state.startedAt,
    deadlineAt: state.deadlineAt,
    offline: state.offline,
    outputFrom: state.outputFrom,
    shown: state.shown,
  };
}

/**
 * Runs `protocol` as a child of `parent` (a `call` or `foreach` step): its own variables, the
 * parent's ports, tenant, deadline and cancellation, no checkpoint of its own (the parent's
 * step is one step of the durable run), one level deeper.
 */
export async function runChild(
  parent: LiveRun,
  protocol: Protocol,
  variables: Record<string, unknown>,
  executionId: string | undefined,
): Promise<RunResult> {
  const now = parent.clock.now();
  const { onStep: _onStep, onStepStart: _onStepStart, onToken: _onToken, ...context } = parent.context;
  const child = new LiveRun(
    { ...context, signal: parent.signal, executionId },
    protocol,
    {
      variables,
      path: [],
      steps: [],
      unresolved: [],
      stepCount: 0,
      visits: {},
      startedAt: new Date(now).toISOString(),
      deadlineAt: parent.deadlineAt,
      offline: false,
    },
    { durable: false, keepSteps: true },
    parent.callDepth + 1,
  );
  try {
    return await drive(child, startOf(child, protocol.start ?? protocol.steps[0]?.id), true);
  } finally {
    // A secret the child read stays redacted in what the parent keeps.
    for (const name of child.redactor.names) {
      const value = parent.ports.secrets?.get(name);
      if (value !== undefined) parent.redactor.addSecret(name, value);
    }
  }
}
