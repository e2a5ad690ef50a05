/** The `condition` step: its conditions choose the next step or its `else_step`. */
import { evaluateConditions } from "../../mova/conditions.ts";
import type { ConditionStep } from "../../mova/schema.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome } from "../flow.ts";
import { baseRecord, finishRecord } from "../step-record.ts";

export function executeCondition(state: LiveRun, step: ConditionStep): Outcome {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  const holds = evaluateConditions(step.conditions, state.resolve);
  record.branch = holds ? "then" : "else";
  state.record(finishRecord(state, record, startedMs));
  if (holds) return { kind: "goto", stepId: state.following(step) };
  return step.else_step === undefined ? { kind: "complete" } : { kind: "goto", stepId: step.else_step };
}
