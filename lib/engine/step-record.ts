/** A step's record as it is made: started, finished, skipped; and whether a step's guard lets it run. */
import { evaluateConditions, hasConditions } from "../mova/conditions.ts";
import type { Step } from "../mova/schema.ts";
import type { StepError, StepRecord } from "../core/run.ts";
import type { LiveRun } from "./live-run.ts";

export function baseRecord(step: Step, startedMs: number): StepRecord {
  return {
    id: step.id,
    action: step.action,
    status: "succeeded",
    attempts: 1,
    startedAt: new Date(startedMs).toISOString(),
    durationMs: 0,
  };
}

export function finishRecord(state: LiveRun, record: StepRecord, startedMs: number): StepRecord {
  record.durationMs = Math.max(0, state.clock.now() - startedMs);
  return record;
}

export function skippedRecord(state: LiveRun, step: Step): StepRecord {
  const now = state.clock.now();
  return { ...baseRecord(step, now), status: "skipped", attempts: 0 };
}

export function guardHolds(state: LiveRun, step: Step): boolean {
  if (step.action === "condition" || !hasConditions(step.conditions)) return true;
  return evaluateConditions(step.conditions, state.resolve);
}

export function stepFailure(step: Step, error: StepError | undefined): StepError {
  const cause = error ?? { code: "step_failed", message: "the step failed" };
  return { code: cause.code, message: `step "${step.id}" failed: ${cause.message}` };
}
