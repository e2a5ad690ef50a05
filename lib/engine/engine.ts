/**
 * The protocol engine: walks a protocol's steps, calling the LLM and tools through ports,
 * suspending on `input` steps and resuming from the suspended run. `advanceRun` goes on from a
 * RunState (a checkpoint) and hands the state to a checkpoint hook after every step, so a run
 * can stop between any two steps and go on elsewhere. Every run keeps its state in its own
 * objects; nothing mutable is shared between runs.
 */
import { MovaError } from "../errors.ts";
import {
  type AdvanceOptions,
  DEFAULT_RUN_DEADLINE_MS,
  type ResumeOptions,
  type RunOptions,
} from "./run-options.ts";
import type { RunResult } from "../core/run.ts";
import { countVisits, findProtocol, isRunState, isSuspendedRun, newRunState } from "./run-state.ts";
import { LiveRun } from "./live-run.ts";
import { FINISHED } from "./flow.ts";
import { realClock } from "./real-clock.ts";
import { carriedOf, drive, startOf } from "./drive.ts";
import { applyReply } from "./steps/input.ts";

/** Runs a protocol from its start until it completes, fails, times out or waits for input. */
export async function runProtocol(options: RunOptions): Promise<RunResult> {
  const protocol = findProtocol(options.document, options.protocol);
  const clock = options.ports.clock ?? realClock;
  const initial = newRunState({
    document: options.document,
    protocol: protocol.name,
    variables: options.variables ?? {},
    ...(options.deadlineMs !== undefined && { deadlineMs: options.deadlineMs }),
    now: clock.now(),
  });
  const state = new LiveRun(options, protocol, carriedOf(initial), { durable: false, keepSteps: true });
  return drive(state, startOf(state, initial.next), true);
}

/** Secrets are never stored with a run: re-read them by name so that they stay redacted. */
function rereadSecrets(state: LiveRun, names: readonly string[] | undefined, options: RunOptions["ports"]) {
  for (const name of names ?? []) {
    const value = options.secrets?.get(name);
    if (value !== undefined) state.redactor.addSecret(name, value);
  }
}

/** Resumes a run suspended on an `input` step with the user's reply. */
export async function resumeRun(options: ResumeOptions): Promise<RunResult> {
  const { suspended, reply } = options;
  if (!isSuspendedRun(suspended)) {
    throw new MovaError("invalid_suspended_run", "the suspended run is not a version 1 suspended run");
  }
  const protocol = findProtocol(options.document, suspended.protocol);
  const step = protocol.steps.find((item) => item.id === suspended.stepId);
  if (step?.action !== "input") {
    throw new MovaError(
      "invalid_suspended_run",
      `the protocol "${protocol.name}" has no input step "${suspended.stepId}" to resume`,
    );
  }
  const copy = structuredClone(suspended);
  const startedMs = Date.parse(copy.startedAt);
  // Runs suspended before visits were kept may hold the request's deadline as theirs (time spent
  // waiting for the user counted against it): theirs is recomputed from the protocol.
  const deadlineAt =
    copy.visits !== undefined && copy.deadlineAt !== undefined
      ? copy.deadlineAt
      : (Number.isFinite(startedMs) ? startedMs : (options.ports.clock ?? realClock).now()) +
        (protocol.deadline_ms ?? DEFAULT_RUN_DEADLINE_MS);
  const state = new LiveRun(
    options,
    protocol,
    {
      variables: copy.variables,
      path: copy.path,
      steps: copy.steps,
      unresolved: copy.unresolved,
      stepCount: copy.stepCount,
      visits: copy.visits ?? countVisits(copy.path),
      startedAt: copy.startedAt,
      deadlineAt,
      offline: copy.offline === true,
    },
    { durable: false, keepSteps: true },
  );
  rereadSecrets(state, copy.secretNames, options.ports);
  return drive(state, applyReply(state, step, reply, copy.waiting), false);
}

/**
 * Advances a run from its state (a new run's, a checkpoint, or a previous call's) until it
 * finishes, waits for input, `shouldPause` says so, or a checkpoint fails. After every step
 * the awaited `checkpoint` hook gets the state and the step's records; a `waiting_input` state
 * needs the `reply`. The result's `state` is where the run stands (status `running`: advance
 * it again from there).
 */
export async function advanceRun(options: AdvanceOptions): Promise<RunResult> {
  const given = options.state;
  if (!isRunState(given))
    throw new MovaError("invalid_run_state", "the run state is not a version 2 run state");
  if (FINISHED.has(given.status)) {
    throw new MovaError(
      "run_finished",
      `the run already ended (${given.status}); there is nothing to advance`,
    );
  }
  const protocol = findProtocol(options.document, given.protocol);
  const waitedOn = given.status === "waiting_input" && given.next !== undefined ? given.next : undefined;
  const inputStep = waitedOn === undefined ? undefined : protocol.steps.find((item) => item.id === waitedOn);
  if (given.status === "waiting_input") {
    if (inputStep?.action !== "input") {
      throw new MovaError(
        "invalid_run_state",
        `the protocol "${protocol.name}" has no input step "${waitedOn}"`,
      );
    }
    if (options.reply === undefined) {
      throw new MovaError("reply_required", `the run waits for input at step "${waitedOn}"; give the reply`);
    }
  } else if (given.status !== "running") {
    throw new MovaError("invalid_run_state", `a run ${given.status} cannot be advanced`);
  } else if (options.reply !== undefined) {
    throw new MovaError("unexpected_reply", "the run does not wait for input");
  }
  const copy = structuredClone(given);
  const state = new LiveRun(options, protocol, carriedOf(copy), {
    durable: true,
    keepSteps: options.keepSteps ?? true,
    checkpoint: options.checkpoint,
    shouldPause: options.shouldPause,
    saved: given,
  });
  rereadSecrets(state, copy.secretNames, options.ports);
  if (inputStep?.action === "input" && options.reply !== undefined) {
    return drive(state, applyReply(state, inputStep, options.reply, copy.waiting), false);
  }
  return drive(state, startOf(state, copy.next), true);
}
