import { describe, expect, it } from "vitest";
import { evaluateCondition, evaluateConditions, isConditionOperator } from "../../lib/mova/conditions.ts";
import { MAX_PATTERN_LENGTH, compilePattern } from "../../lib/mova/regex.ts";
import { getPath } from "../../lib/mova/placeholders.ts";
import { CONDITION_OPERATORS, type Condition } from "../../lib/mova/schema.ts";

const vars: Record<string, unknown> = {
  temp: 26,
  temp_text: "26",
  name: "Олена",
  tags: ["a", "b", 3],
  data: { key: 1 },
  empty: "",
  nothing: null,
  yes: true,
};
const check = (variable: string, operator: string, value?: unknown) =>
  evaluateCondition({ variable, operator, value } as Condition, (path) => getPath(vars, path));

describe("evaluateCondition", () => {
  it("equals and not_equals compare numbers numerically, other values exactly", () => {
    expect(check("temp", "equals", 26)).toBe(true);
    expect(check("temp", "equals", "26.0")).toBe(true);
    expect(check("temp_text", "equals", 26)).toBe(true);
    expect(check("name", "equals", "Олена")).toBe(true);
    expect(check("name", "equals", "олена")).toBe(false);
    expect(check("yes", "equals", "true")).toBe(true);
    expect(check("data", "equals", { key: 1 })).toBe(true);
    expect(check("missing", "equals", "x")).toBe(false);
    expect(check("temp", "not_equals", 25)).toBe(true);
    expect(check("temp", "not_equals", "26")).toBe(false);
  });

  it("contains and not_contains look in strings, lists and object keys", () => {
    expect(check("name", "contains", "лен")).toBe(true);
    expect(check("tags", "contains", "b")).toBe(true);
    expect(check("tags", "contains", "3")).toBe(true);
    expect(check("data", "contains", "key")).toBe(true);
    expect(check("temp", "contains", 2)).toBe(false);
    expect(check("name", "not_contains", "x")).toBe(true);
    expect(check("tags", "not_contains", "a")).toBe(false);
    expect(check("missing", "not_contains", "x")).toBe(false);
  });

  it("orders numbers numerically even when written as text", () => {
    expect(check("temp", "greater_than", 25)).toBe(true);
    expect(check("temp_text", "greater_than", "9")).toBe(true);
    expect(check("temp", "less_than", 100)).toBe(true);
    expect(check("temp", "greater_or_equal", 26)).toBe(true);
    expect(check("temp", "less_or_equal", 25.9)).toBe(false);
  });

  it("orders two strings as strings", () => {
    expect(check("name", "greater_than", "Анна")).toBe(true);
    expect(check("name", "less_than", "Анна")).toBe(false);
  });

  it("is false, never an error, when a comparison cannot be made", () => {
    expect(check("data", "greater_than", 1)).toBe(false);
    expect(check("data", "less_than", 1)).toBe(false);
    expect(check("missing", "greater_or_equal", 0)).toBe(false);
    expect(check("missing", "less_or_equal", 0)).toBe(false);
    expect(check("name", "greater_than", 5)).toBe(false);
    expect(check("empty", "less_than", 1)).toBe(false);
    expect(check("temp", "teleports", 1)).toBe(false);
  });

  it("exists and not_exists treat null like a missing value", () => {
    expect(check("empty", "exists")).toBe(true);
    expect(check("nothing", "exists")).toBe(false);
    expect(check("missing", "exists")).toBe(false);
    expect(check("nothing", "not_exists")).toBe(true);
    expect(check("temp", "not_exists")).toBe(false);
  });

  it("in needs a list and compares like equals", () => {
    expect(check("temp", "in", [1, "26"])).toBe(true);
    expect(check("name", "in", ["Олена", "Іван"])).toBe(true);
    expect(check("name", "in", ["Іван"])).toBe(false);
    expect(check("name", "in", "Олена")).toBe(false);
  });

  it("matches tests a Unicode regular expression and is false for a bad one", () => {
    expect(check("name", "matches", "^\\p{Lu}\\p{Ll}+$")).toBe(true);
    expect(check("temp", "matches", "^\\d{2}$")).toBe(true);
    expect(check("name", "matches", "^\\d+$")).toBe(false);
    expect(check("name", "matches", "([")).toBe(false);
    expect(check("name", "matches", 5)).toBe(false);
    expect(check("missing", "matches", ".*")).toBe(false);
  });

  it("all conditions must hold; none holds trivially", () => {
    const resolve = (path: string) => getPath(vars, path);
    expect(evaluateConditions(undefined, resolve)).toBe(true);
    expect(evaluateConditions([], resolve)).toBe(true);
    expect(
      evaluateConditions(
        [
          { variable: "temp", operator: "greater_than", value: 20 },
          { variable: "name", operator: "exists" },
        ],
        resolve,
      ),
    ).toBe(true);
    expect(
      evaluateConditions(
        [
          { variable: "temp", operator: "greater_than", value: 20 },
          { variable: "name", operator: "equals", value: "x" },
        ],
        resolve,
      ),
    ).toBe(false);
  });
});

describe("operators and patterns", () => {
  it("knows exactly the operators of the schema", () => {
    for (const operator of CONDITION_OPERATORS) expect(isConditionOperator(operator)).toBe(true);
    expect(isConditionOperator("bigger")).toBe(false);
    expect(isConditionOperator("toString")).toBe(false);
  });
  it("compiles good patterns and explains bad ones", () => {
    expect(compilePattern("^a+$")).not.toHaveProperty("error");
    expect(compilePattern("(")).toHaveProperty("error");
    expect(compilePattern(42)).toEqual({ error: "the pattern must be a string" });
    expect(compilePattern("a".repeat(MAX_PATTERN_LENGTH + 1))).toHaveProperty("error");
  });
});
