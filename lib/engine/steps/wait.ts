/**
 * The `wait` and `wait_event` steps. A durable run pauses on them (status `running`, the pause
 * in its state) and costs nothing until it is advanced again: when its wait ends, its event
 * arrives, its event's timeout passes, or its deadline does. A run that is not durable (the
 * CLI, a session's inline run) sleeps through a `wait` and cannot wait for an event.
 */
import { MovaError } from "../../errors.ts";
import type { WaitEventStep, WaitStep } from "../../mova/schema.ts";
import { defaultOutputVariable } from "../../mova/steps.ts";
import type { RunPause, StepRecord } from "../../core/run.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome } from "../flow.ts";
import { stopError } from "../run-stop.ts";
import { baseRecord } from "../step-record.ts";

/** An event delivered to a run (POST /executions/{id}/events/{name} or a signed callback). */
export interface DeliveredEvent {
  name: string;
  payload: unknown;
}

export const notWaitingFor = (name: string, why: string) =>
  new MovaError("not_waiting_for_event", `the run does not wait for the event "${name}": ${why}`, {
    status: 409,
  });

function waitRecord(state: LiveRun, step: WaitStep | WaitEventStep, sinceMs: number): StepRecord {
  const record = baseRecord(step, sinceMs);
  record.durationMs = Math.max(0, state.clock.now() - sinceMs);
  return record;
}

function failedWait(state: LiveRun, step: WaitStep | WaitEventStep, code: string, message: string): Outcome {
  const record = waitRecord(state, step, state.clock.now());
  record.status = "failed";
  record.error = { code, message };
  state.record(record);
  return { kind: "fail", error: { code, message: `step "${step.id}" failed: ${message}` } };
}

export async function executeWait(state: LiveRun, step: WaitStep): Promise<Outcome> {
  const now = state.clock.now();
  let until = now + (step.seconds ?? 0) * 1000;
  if (step.until !== undefined) {
    const text = state.render(step.until);
    until = Date.parse(text);
    if (Number.isNaN(until)) {
      return failedWait(state, step, "invalid_wait_until", `"${text}" is not an ISO 8601 time`);
    }
  }
  if (until > now && !state.mode.durable) {
    // Nothing can wake a run that is not durable: it sleeps, bounded by its deadline and budget.
    try {
      await state.sleep(until - now, state.signal);
    } catch {
      const record = waitRecord(state, step, now);
      record.status = "failed";
      record.error = stopError(state.stopKind() ?? "cancelled");
      state.record(record);
      return { kind: "stop" };
    }
  }
  if (until <= now || !state.mode.durable) {
    state.record(waitRecord(state, step, now));
    return { kind: "goto", stepId: state.following(step) };
  }
  const pause: RunPause = { kind: "wait", since: state.isoNow(), wakeAt: Math.min(until, state.deadlineAt) };
  return { kind: "pause", step, pause };
}

export function executeWaitEvent(state: LiveRun, step: WaitEventStep): Outcome {
  if (!state.mode.durable) {
    return failedWait(
      state,
      step,
      "events_unsupported",
      "only a durable execution (POST /executions) can wait for an event",
    );
  }
  const now = state.clock.now();
  const timeoutAt = step.timeout_seconds === undefined ? undefined : now + step.timeout_seconds * 1000;
  const pause: RunPause = {
    kind: "event",
    event: step.event,
    since: state.isoNow(),
    wakeAt: Math.min(timeoutAt ?? Number.POSITIVE_INFINITY, state.deadlineAt),
    ...(timeoutAt !== undefined ? { timeoutAt } : {}),
  };
  return { kind: "pause", step, pause };
}

/**
 * A paused run advanced again: its wait ended, its event arrived, its event's timeout passed;
 * `undefined` when none of these holds yet (it stays paused, nothing changes). An event the
 * run does not wait for is MovaError `not_waiting_for_event` (409), one past its timeout
 * `event_timeout` (409); nothing changes then either.
 */
export function resumePause(
  state: LiveRun,
  step: WaitStep | WaitEventStep,
  pause: RunPause,
  event: DeliveredEvent | undefined,
): Outcome | undefined {
  const now = state.clock.now();
  const sinceMs = Date.parse(pause.since);
  const since = Number.isNaN(sinceMs) ? now : sinceMs;
  if (step.action === "wait" || pause.kind === "wait") {
    if (event) throw notWaitingFor(event.name, `it is paused at the wait step "${step.id}"`);
    if (now < pause.wakeAt) return undefined;
    state.record(waitRecord(state, step, since));
    return { kind: "goto", stepId: state.following(step) };
  }
  const timedOut = pause.timeoutAt !== undefined && now >= pause.timeoutAt;
  if (event) {
    if (event.name !== pause.event) throw notWaitingFor(event.name, `it waits for "${pause.event}"`);
    if (timedOut) {
      throw new MovaError("event_timeout", `the wait for the event "${event.name}" timed out`, {
        status: 409,
      });
    }
    const variable = defaultOutputVariable(step) as string;
    const record = waitRecord(state, step, since);
    record.output = event.payload;
    record.outputVariable = variable;
    state.setVariable(variable, event.payload);
    state.setOutput(event.payload, variable);
    state.record(record);
    return { kind: "goto", stepId: state.following(step) };
  }
  if (!timedOut) return undefined;
  const message = `no event "${pause.event}" arrived within ${step.timeout_seconds ?? 0} s`;
  const record = waitRecord(state, step, since);
  record.status = "failed";
  record.error = { code: "event_timeout", message };
  state.record(record);
  if (step.on_timeout !== undefined) return { kind: "goto", stepId: step.on_timeout };
  return { kind: "fail", error: { code: "event_timeout", message: `step "${step.id}" failed: ${message}` } };
}
