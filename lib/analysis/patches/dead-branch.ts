/**
 * A condition one of whose ways was never taken is removed, and the run goes straight where
 * every run went: every reference to the condition step (see references.ts) names its live
 * target instead, a step that fell through to it names that target with `next_step`, and
 * `start` names it when the condition was the implicit start. When the live way ends the run,
 * the condition step becomes an `end` step of the same id (nothing else can say "end here").
 * Every run seen keeps its way, only without the condition step. The steps that only the dead
 * way reached stay, and the validator's `unreachable_step` warning names them.
 *
 * No patch when the live way has several targets (a rule list or group whose rules lead to
 * different steps), when it leads back to the condition itself, or when the step falling
 * through to the condition is a rule list that routes (its `next_step` is also where it goes
 * when no rule holds, so it cannot be given one).
 */
import type { Operation } from "fast-json-patch";
import { isRoutingList } from "../../mova/conditions.ts";
import type { ConditionStep } from "../../mova/schema.ts";
import { redirect } from "./references.ts";
import {
  fallsThrough,
  pointer,
  type SourceProtocol,
  stepIndex,
  stepPath,
  successorOf,
  testStep,
} from "./source.ts";

/** The run ends. */
const END = null;
const FOLLOWING = Symbol("following");

/** Where the way that was always taken leads: a step id, END, or undefined when it has several targets. */
function liveTarget(
  protocol: SourceProtocol,
  index: number,
  step: ConditionStep,
  never: "then" | "else",
): string | typeof END | undefined {
  const conditions = step.conditions;
  let targets: Array<string | typeof FOLLOWING | undefined>;
  if (never === "then") {
    const way = Array.isArray(conditions)
      ? isRoutingList(conditions)
        ? (step.next_step ?? step.else_step)
        : step.else_step
      : (conditions.default_next_step_id ?? step.else_step);
    targets = [way];
  } else if (Array.isArray(conditions)) {
    targets = isRoutingList(conditions)
      ? conditions.map((rule) => rule.next_step_id ?? FOLLOWING)
      : [FOLLOWING];
  } else {
    const ruleTargets = conditions.rules.map((rule) => rule.next_step_id ?? FOLLOWING);
    // AND holds only when every rule does: the first rule decides. NOT holds when not all
    // do: the first that held decides, or none held.
    targets =
      conditions.logic === "AND"
        ? ruleTargets.slice(0, 1)
        : conditions.logic === "NOT"
          ? [...ruleTargets, FOLLOWING]
          : ruleTargets;
  }
  const resolved = new Set(
    targets.map((target) => (target === FOLLOWING ? successorOf(protocol.model, index) : target) ?? END),
  );
  return resolved.size === 1 ? [...resolved][0] : undefined;
}

export function deadBranchPatch(
  protocol: SourceProtocol,
  stepId: string,
  never: unknown,
): Operation[] | null {
  if (never !== "then" && never !== "else") return null;
  const index = stepIndex(protocol, stepId);
  const step = protocol.model.steps[index];
  if (step?.action !== "condition") return null;
  const live = liveTarget(protocol, index, step, never);
  if (live === undefined || live === stepId) return null;
  if (live === END) {
    const description = protocol.rawSteps[index]!.description;
    const end = { id: stepId, action: "end", ...(description !== undefined && { description }) };
    return [testStep(protocol, index), { op: "replace", path: stepPath(protocol, index), value: end }];
  }
  if (stepIndex(protocol, live) < 0) return null;

  const { tests, changes, steps } = redirect(protocol, stepId, live, new Set([index]));
  const after = protocol.model.steps[index + 1]?.id;
  const before = protocol.model.steps[index - 1];
  if (before && fallsThrough(protocol.model, before) && after !== live) {
    if (before.action === "condition" && isRoutingList(before.conditions)) return null;
    steps.add(index - 1);
    changes.push({ op: "add", path: stepPath(protocol, index - 1, "next_step"), value: live });
  }
  if (index === 0 && protocol.raw.start === undefined && after !== live)
    changes.push({ op: "add", path: pointer(protocol.path, "start"), value: live });
  const stepTests = [index, ...[...steps].sort((a, b) => a - b)].map((i) => testStep(protocol, i));
  return [...stepTests, ...tests, ...changes, { op: "remove", path: stepPath(protocol, index) }];
}
