/** The `input` step: the run waits for the user's reply, and goes on with it. */
import type { InputStep } from "../../mova/schema.ts";
import type { StepRecord } from "../../core/run.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome, Transition } from "../flow.ts";
import { transitionOf } from "../transitions.ts";
import { checkReply } from "../input-validation.ts";

/** Renders the question and suspends the run on it. */
export function executeInput(state: LiveRun, step: InputStep): Outcome {
  const prompt = state.render(step.prompt);
  state.reply(prompt);
  return { kind: "suspend", step, prompt, since: state.isoNow() };
}

/** Completes the `input` step waited on with the user's reply; answers where the run goes next. */
export function applyReply(
  state: LiveRun,
  step: InputStep,
  reply: string,
  waiting: { prompt: string; since: string; failedReplies?: number } | undefined,
): Transition {
  const nowMs = state.clock.now();
  let value: unknown = reply;
  if (step.validate) {
    const checked = checkReply(reply, step.validate, step.variable, state.resolve);
    if (!checked.ok) return refuseReply(state, step, waiting, checked.reason);
    value = checked.value;
  }
  const sinceMs = waiting ? Date.parse(waiting.since) : Number.NaN;
  const record: StepRecord = {
    id: step.id,
    action: step.action,
    status: "succeeded",
    attempts: 1,
    startedAt: Number.isNaN(sinceMs) ? new Date(nowMs).toISOString() : (waiting?.since as string),
    durationMs: Number.isNaN(sinceMs) ? 0 : Math.max(0, nowMs - sinceMs),
    prompt: waiting?.prompt ?? state.render(step.prompt),
    output: value,
    outputVariable: step.variable,
  };
  if (waiting?.failedReplies) record.attempts = waiting.failedReplies + 1;
  state.setVariable(step.variable, value);
  state.setVariable("user_input", reply);
  state.setOutput(value, step.variable);
  state.record(record);
  return transitionOf(state, { kind: "goto", stepId: state.following(step) });
}

const DEFAULT_MAX_ATTEMPTS = 3;

/**
 * A reply the form refuses is not stored: the run shows the step's `message` and waits again,
 * until `max_attempts` replies were refused; then it goes to `on_exhausted`, or fails with
 * `input_attempts_exhausted`.
 */
function refuseReply(
  state: LiveRun,
  step: InputStep,
  waiting: { prompt: string; since: string; failedReplies?: number } | undefined,
  reason: string,
): Transition {
  const rules = step.validate ?? {};
  const failedReplies = (waiting?.failedReplies ?? 0) + 1;
  if (failedReplies >= (rules.max_attempts ?? DEFAULT_MAX_ATTEMPTS)) {
    const nowMs = state.clock.now();
    const error = {
      code: "input_attempts_exhausted",
      message: `step "${step.id}" refused ${failedReplies} replies (the last one: ${reason})`,
    };
    state.record({
      id: step.id,
      action: step.action,
      status: "failed",
      attempts: failedReplies,
      startedAt: waiting?.since ?? new Date(nowMs).toISOString(),
      durationMs: 0,
      prompt: waiting?.prompt ?? state.render(step.prompt),
      error,
    });
    if (rules.on_exhausted !== undefined)
      return transitionOf(state, { kind: "goto", stepId: rules.on_exhausted });
    return transitionOf(state, { kind: "fail", error });
  }
  const message = state.render(rules.message ?? `That is ${reason}. ${step.prompt}`);
  state.reply(message);
  return transitionOf(state, {
    kind: "suspend",
    step,
    prompt: message,
    since: state.isoNow(),
    failedReplies,
  });
}
