/**
 * Condition evaluation. A comparison that cannot be made is false, never an exception.
 */
import { CONDITION_OPERATORS, type Condition, type ConditionOperator } from "./schema.ts";
import { stringifyValue, type Resolver } from "./placeholders.ts";
import { testPattern } from "./regex.ts";

export function isConditionOperator(operator: string): operator is ConditionOperator {
  return (CONDITION_OPERATORS as readonly string[]).includes(operator);
}

function asNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
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

/** Evaluates one condition against the run's variables. */
export function evaluateCondition(condition: Condition, resolve: Resolver): boolean {
  const actual = resolve(condition.variable);
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
    default:
      return false;
  }
}

/** All conditions must hold; an empty list holds. */
export function evaluateConditions(conditions: readonly Condition[] | undefined, resolve: Resolver): boolean {
  if (!conditions) return true;
  return conditions.every((condition) => evaluateCondition(condition, resolve));
}
