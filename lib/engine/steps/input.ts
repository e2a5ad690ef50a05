/** The `input` step: the run waits for the user's reply, and goes on with it. */
import type { InputStep } from "../../mova/schema.ts";
import type { StepRecord } from "../../core/run.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome, Transition } from "../flow.ts";
import { transitionOf } from "../transitions.ts";

/** Renders the question and suspends the run on it. */
export function executeInput(state: LiveRun, step: InputStep): Outcome {
  const prompt = state.render(step.prompt);
  state.replies.push(prompt);
  return { kind: "suspend", step, prompt, since: state.isoNow() };
}

/** Completes the `input` step waited on with the user's reply; answers where the run goes next. */
export function applyReply(
  state: LiveRun,
  step: InputStep,
  reply: string,
  waiting: { prompt: string; since: string } | undefined,
): Transition {
  const nowMs = state.clock.now();
  const sinceMs = waiting ? Date.parse(waiting.since) : Number.NaN;
  const record: StepRecord = {
    id: step.id,
    action: step.action,
    status: "succeeded",
    attempts: 1,
    startedAt: Number.isNaN(sinceMs) ? new Date(nowMs).toISOString() : (waiting?.since as string),
    durationMs: Number.isNaN(sinceMs) ? 0 : Math.max(0, nowMs - sinceMs),
    prompt: waiting?.prompt ?? state.render(step.prompt),
    output: reply,
    outputVariable: step.variable,
  };
  state.setVariable(step.variable, reply);
  state.setVariable("user_input", reply);
  state.setOutput(reply, step.variable);
  state.record(record);
  return transitionOf(state, { kind: "goto", stepId: state.following(step) });
}
