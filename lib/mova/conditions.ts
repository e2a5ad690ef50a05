/**
 * Condition evaluation. A comparison that cannot be made is false, never an exception; so
 * is a rule that cannot be evaluated at all (an expression with no value, an unknown
 * operator, a value of the wrong shape).
 *
 * A step's `conditions` are a list of rules or a group (`{ logic, rules,
 * default_next_step_id }`). A list whose rules name no step is the sections form's "all must
 * hold". A list where some rule names a step (`next_step_id`) routes: the first rule that
 * holds decides. In a group every rule is evaluated and combined by `logic` (NOT: not all);
 * when the combination holds, the first rule that held decides, otherwise the default.
 */
import {
  CONDITION_OPERATORS,
  type Condition,
  type ConditionGroup,
  type ConditionOperator,
  type Conditions,
} from "./schema.ts";
import { stringifyValue, type Resolver } from "./placeholders.ts";
import { asNumber, readOperand } from "./expression.ts";
import { testPattern } from "./regex.ts";

export function isConditionOperator(operator: string): operator is ConditionOperator {
  return (CONDITION_OPERATORS as readonly string[]).includes(operator);
}

function looselyEqual(left: unknown, right: unknown): boolean {
  const a = asNumber(left);
  const b = asNumber(right);
  if (a !== undefined && b !== undefined) return a === b;
  if (typeof left === "object" || typeof right === "object") {
    return left !== undefined && right !== undefined && stringifyValue(left) === stringifyValue(right);
  }
  if (typeof left === "boolean" || typeof right === "boolean") return String(left) === String(right);
  return left === right;
}

function contains(haystack: unknown, needle: unknown): boolean {
  if (Array.isArray(haystack)) return haystack.some((item) => looselyEqual(item, needle));
  if (typeof haystack === "string") return needle !== undefined && haystack.includes(stringifyValue(needle));
  if (haystack !== null && typeof haystack === "object" && typeof needle === "string") {
    return Object.hasOwn(haystack, needle);
  }
  return false;
}

function compare(left: unknown, right: unknown): number | undefined {
  const a = asNumber(left);
  const b = asNumber(right);
  if (a !== undefined && b !== undefined) return a - b;
  if (typeof left === "string" && typeof right === "string") return left < right ? -1 : left > right ? 1 : 0;
  return undefined;
}

function inRange(actual: unknown, range: unknown): boolean {
  if (!Array.isArray(range) || range.length !== 2) return false;
  const value = asNumber(actual);
  const low = asNumber(range[0]);
  const high = asNumber(range[1]);
  return value !== undefined && low !== undefined && high !== undefined && low <= value && value <= high;
}

/** Evaluates one rule's own comparison (not its `sub_conditions`) against the run's variables. */
export function evaluateCondition(condition: Condition, resolve: Resolver): boolean {
  if (condition.variable === undefined) return false;
  const operand = readOperand(condition.variable, resolve);
  if (!operand.ok) return false;
  const actual = operand.value;
  const expected = condition.value;
  switch (condition.operator) {
    case "equals":
      return looselyEqual(actual, expected);
    case "not_equals":
      return !looselyEqual(actual, expected);
    case "contains":
      return contains(actual, expected);
    case "not_contains":
      return actual !== undefined && !contains(actual, expected);
    case "greater_than": {
      const c = compare(actual, expected);
      return c !== undefined && c > 0;
    }
    case "less_than": {
      const c = compare(actual, expected);
      return c !== undefined && c < 0;
    }
    case "greater_or_equal": {
      const c = compare(actual, expected);
      return c !== undefined && c >= 0;
    }
    case "less_or_equal": {
      const c = compare(actual, expected);
      return c !== undefined && c <= 0;
    }
    case "exists":
      return actual !== undefined && actual !== null;
    case "not_exists":
      return actual === undefined || actual === null;
    case "in":
      return Array.isArray(expected) && expected.some((item) => looselyEqual(actual, item));
    case "matches": {
      if (actual === undefined || actual === null || typeof expected !== "string") return false;
      return testPattern(expected, stringifyValue(actual));
    }
    case "in_range":
      return inRange(actual, expected);
    case "matches_regex":
      if (actual === undefined || actual === null || typeof expected !== "string") return false;
      return testPattern(expected, stringifyValue(actual), { anchor: "start" });
    default:
      return false;
  }
}

/** Whether a rule holds: its nested group's combination, or its own comparison. */
export function ruleHolds(rule: Condition, resolve: Resolver): boolean {
  if (rule.sub_conditions !== undefined) return groupHolds(rule.sub_conditions, resolve);
  return evaluateCondition(rule, resolve);
}

function combine(logic: ConditionGroup["logic"], results: readonly boolean[]): boolean {
  const all = results.every(Boolean);
  if (logic === "OR") return results.some(Boolean);
  if (logic === "NOT") return !all;
  return all;
}

/** Every rule of the group evaluated (none skipped), then combined. */
function groupResults(group: ConditionGroup, resolve: Resolver): boolean[] {
  return group.rules.map((rule) => ruleHolds(rule, resolve));
}

function groupHolds(group: ConditionGroup, resolve: Resolver): boolean {
  return combine(group.logic, groupResults(group, resolve));
}

/** Whether a list routes (some rule names the step it leads to). */
export function isRoutingList(conditions: Conditions): boolean {
  return Array.isArray(conditions) && conditions.some((rule) => rule.next_step_id !== undefined);
}

/** Whether the conditions hold (a guard): all rules of a list, or the group's combination; none given holds. */
export function evaluateConditions(conditions: Conditions | undefined, resolve: Resolver): boolean {
  if (conditions === undefined) return true;
  if (Array.isArray(conditions)) {
    if (isRoutingList(conditions)) return conditions.some((rule) => ruleHolds(rule, resolve));
    return conditions.every((rule) => ruleHolds(rule, resolve));
  }
  return groupHolds(conditions, resolve);
}

/** The step after a condition step in the flow (its `next_step`, or the list's next in sequential flow). */
export const FOLLOWING = Symbol("following");

/**
 * Where a `condition` step sends the run. `next`: a step id, FOLLOWING (the step after it in
 * the flow), or undefined (the run ends, completed).
 * - plain list: all hold → FOLLOWING; else `else_step`, else the end;
 * - routing list: the first rule that holds → its `next_step_id` (FOLLOWING when it names
 *   none); none → the step's own `next_step`, else `else_step`, else the end;
 * - group: the combination holds → the `next_step_id` of the first rule that held (FOLLOWING
 *   when none names one); else `default_next_step_id`, else `else_step`, else the end.
 */
export function routeCondition(
  conditions: Conditions,
  step: { next_step?: string | undefined; else_step?: string | undefined },
  resolve: Resolver,
): { holds: boolean; next: string | typeof FOLLOWING | undefined } {
  if (Array.isArray(conditions)) {
    if (!isRoutingList(conditions)) {
      const holds = conditions.every((rule) => ruleHolds(rule, resolve));
      return { holds, next: holds ? FOLLOWING : step.else_step };
    }
    for (const rule of conditions) {
      if (ruleHolds(rule, resolve)) return { holds: true, next: rule.next_step_id ?? FOLLOWING };
    }
    return { holds: false, next: step.next_step ?? step.else_step };
  }
  const results = groupResults(conditions, resolve);
  if (combine(conditions.logic, results)) {
    const first = results.indexOf(true);
    return {
      holds: true,
      next: (first === -1 ? undefined : conditions.rules[first]?.next_step_id) ?? FOLLOWING,
    };
  }
  return { holds: false, next: conditions.default_next_step_id ?? step.else_step };
}

/** Every rule of the conditions, nested ones included, depth first. */
export function allRules(conditions: Conditions | undefined): Condition[] {
  const out: Condition[] = [];
  const walk = (rules: readonly Condition[]): void => {
    for (const rule of rules) {
      out.push(rule);
      if (rule.sub_conditions) walk(rule.sub_conditions.rules);
    }
  };
  if (conditions !== undefined) walk(Array.isArray(conditions) ? conditions : conditions.rules);
  return out;
}

/** The steps a condition step's rules and group name as where the run goes (not nested ones: they do not route). */
export function conditionTargets(conditions: Conditions | undefined): string[] {
  if (conditions === undefined) return [];
  const rules = Array.isArray(conditions) ? conditions : conditions.rules;
  const targets = rules.map((rule) => rule.next_step_id).filter((id) => id !== undefined);
  if (!Array.isArray(conditions) && conditions.default_next_step_id !== undefined)
    targets.push(conditions.default_next_step_id);
  return targets;
}

/** Whether any conditions are given (an empty list is none). */
export function hasConditions(conditions: Conditions | undefined): boolean {
  if (conditions === undefined) return false;
  return Array.isArray(conditions) ? conditions.length > 0 : conditions.rules.length > 0;
}
