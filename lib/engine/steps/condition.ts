/**
 * The `condition` step: its conditions choose the next step (a rule's `next_step_id`, the
 * following step, a group's default or `else_step`), or the end of the run (conditions.ts).
 */
import { FOLLOWING, routeCondition } from "../../mova/conditions.ts";
import type { ConditionStep } from "../../mova/schema.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome } from "../flow.ts";
import { baseRecord, finishRecord } from "../step-record.ts";

export function executeCondition(state: LiveRun, step: ConditionStep): Outcome {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  const route = routeCondition(step.conditions, step, state.resolve);
  record.branch = route.holds ? "then" : "else";
  state.record(finishRecord(state, record, startedMs));
  if (route.next === FOLLOWING) return { kind: "goto", stepId: state.following(step) };
  return route.next === undefined ? { kind: "complete" } : { kind: "goto", stepId: route.next };
}
