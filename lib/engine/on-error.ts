/**
 * `on_error`: a step that fails (after its retries) sends the run to its `on_error` step
 * instead of failing the run; `{error.step}`, `{error.code}` and `{error.message}` then
 * describe the failure. A run stopped from outside (deadline, cancel) is not a step failure.
 */
import type { Step } from "../mova/schema.ts";
import type { LiveRun } from "./live-run.ts";
import type { Outcome } from "./flow.ts";

/** The variable `{error.*}` reads. */
export const ERROR_VARIABLE = "error";

export function applyOnError(state: LiveRun, step: Step, outcome: Outcome): Outcome {
  if (outcome.kind !== "fail" || step.on_error === undefined) return outcome;
  const prefix = `step "${step.id}" failed: `;
  const message = outcome.error.message.startsWith(prefix)
    ? outcome.error.message.slice(prefix.length)
    : outcome.error.message;
  state.setVariable(ERROR_VARIABLE, { step: step.id, code: outcome.error.code, message });
  return { kind: "goto", stepId: step.on_error };
}
