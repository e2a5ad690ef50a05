/**
 * The condition semantics of MOVA.md ("Conditions of the specification"), checked against a
 * small reference model written straight from its text, on generated rules, groups and
 * variables.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluateConditions, FOLLOWING, routeCondition } from "../../lib/mova/conditions.ts";
import { getPath } from "../../lib/mova/placeholders.ts";
import type { Condition, ConditionGroup, Conditions } from "../../lib/mova/schema.ts";

type Vars = Record<string, number>;
const NAMES = ["a", "b", "c", "missing"] as const;
const STEPS = ["s1", "s2", "s3"] as const;

// ---- the reference model, from MOVA.md --------------------------------------------------

/** A leaf: `variable` is a name or `x + y`; a value that is missing makes the rule false. */
function referenceValue(variable: string, vars: Vars): number | undefined {
  const sum = /^(\w+) \+ (\w+)$/.exec(variable);
  if (sum) {
    const [x, y] = [vars[sum[1] as string], vars[sum[2] as string]];
    return x === undefined || y === undefined ? undefined : x + y;
  }
  return vars[variable];
}

function referenceRule(rule: Condition, vars: Vars): boolean {
  // "A rule with sub_conditions holds when its nested evaluation does not end at its own default."
  if (rule.sub_conditions) return referenceGroupHolds(rule.sub_conditions, vars);
  const value = referenceValue(rule.variable as string, vars);
  // "Any rule that cannot be evaluated is false."
  if (value === undefined) return false;
  const expected = rule.value;
  switch (rule.operator) {
    case "equals":
      return value === expected;
    case "greater_than":
      return value > (expected as number);
    case "less_than":
      return value < (expected as number);
    case "in_range": {
      // "value [low, high], inclusive, numeric"
      const [low, high] = expected as [number, number];
      return low <= value && value <= high;
    }
    case "exists":
      return true;
    default:
      return false;
  }
}

/** "logic defaults to AND; NOT means not all"; every rule is evaluated. */
function referenceGroupHolds(group: ConditionGroup, vars: Vars): boolean {
  const results = group.rules.map((rule) => referenceRule(rule, vars));
  if (group.logic === "OR") return results.some((r) => r);
  if (group.logic === "NOT") return !results.every((r) => r);
  return results.every((r) => r);
}

type Next = string | "FOLLOWING" | "END";

function referenceRoute(
  conditions: Conditions,
  step: { next_step?: string; else_step?: string },
  vars: Vars,
): Next {
  const orEnd = (id: string | undefined): Next => id ?? "END";
  if (Array.isArray(conditions)) {
    const routing = conditions.some((rule) => rule.next_step_id !== undefined);
    if (!routing) {
      // "Rules without next_step_id are plain conditions": all must hold, else `else_step`.
      return conditions.every((rule) => referenceRule(rule, vars)) ? "FOLLOWING" : orEnd(step.else_step);
    }
    // "the first rule that holds decides the next step; when none holds the run goes to the
    // step's own next_step_id, else it ends" (else_step, the sections form's, before the end).
    for (const rule of conditions) if (referenceRule(rule, vars)) return rule.next_step_id ?? "FOLLOWING";
    return orEnd(step.next_step ?? step.else_step);
  }
  // "when the combination holds, the run goes to the next_step_id of the first rule that
  // held, otherwise to default_next_step_id".
  const results = conditions.rules.map((rule) => referenceRule(rule, vars));
  if (referenceGroupHolds(conditions, vars)) {
    const first = results.indexOf(true);
    return (first >= 0 ? conditions.rules[first]?.next_step_id : undefined) ?? "FOLLOWING";
  }
  return orEnd(conditions.default_next_step_id ?? step.else_step);
}

// ---- generators -------------------------------------------------------------------------

const small = fc.integer({ min: -3, max: 3 });
const variable = fc.oneof(
  fc.constantFrom(...NAMES),
  fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...NAMES)).map(([x, y]) => `${x} + ${y}`),
);
const leaf: fc.Arbitrary<Condition> = fc.oneof(
  fc.record({ variable, operator: fc.constantFrom("equals", "greater_than", "less_than"), value: small }),
  fc.record({
    variable,
    operator: fc.constant("in_range"),
    value: fc.tuple(small, small).map(([x, y]) => [Math.min(x, y), Math.max(x, y)]),
  }),
  fc.record({ variable, operator: fc.constantFrom("exists", "no_such_operator") }),
);
const maybeStep = fc.option(fc.constantFrom(...STEPS), { nil: undefined });

const { group } = fc.letrec<{ group: ConditionGroup; rule: Condition }>((tie) => ({
  rule: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.record({ sub_conditions: tie("group") }),
  ),
  group: fc.record(
    {
      logic: fc.constantFrom("AND", "OR", "NOT") as fc.Arbitrary<ConditionGroup["logic"]>,
      rules: fc.array(tie("rule"), { minLength: 1, maxLength: 4 }),
      default_next_step_id: maybeStep,
    },
    { requiredKeys: ["logic", "rules"] },
  ),
}));

const withTarget = (rule: fc.Arbitrary<Condition>) =>
  fc.tuple(rule, maybeStep).map(([r, next]) => (next === undefined ? r : { ...r, next_step_id: next }));
const topRule = withTarget(
  fc.oneof(
    leaf,
    group.map((sub) => ({ sub_conditions: sub }) as Condition),
  ),
);
const conditions: fc.Arbitrary<Conditions> = fc.oneof(
  fc.array(topRule, { minLength: 1, maxLength: 5 }),
  group.chain((g) => fc.array(topRule, { minLength: 1, maxLength: 4 }).map((rules) => ({ ...g, rules }))),
);
const vars: fc.Arbitrary<Vars> = fc.record({ a: small, b: small, c: small }, { requiredKeys: [] });
const stepFields = fc.record({ next_step: maybeStep, else_step: maybeStep }, { requiredKeys: [] });

const resolverOf = (values: Vars) => (path: string) => getPath(values, path);
const asNext = (next: string | typeof FOLLOWING | undefined): Next =>
  next === FOLLOWING ? "FOLLOWING" : next === undefined ? "END" : next;

describe("conditions against the reference model of MOVA.md", () => {
  it("route a condition step exactly as the model does", () => {
    fc.assert(
      fc.property(conditions, stepFields, vars, (given, step, values) => {
        const route = routeCondition(given, step, resolverOf(values));
        expect(asNext(route.next)).toBe(referenceRoute(given, step, values));
      }),
      { numRuns: 2_000 },
    );
  });

  it("hold as a guard exactly when the model's combination holds", () => {
    fc.assert(
      fc.property(group, vars, (given, values) => {
        expect(evaluateConditions(given, resolverOf(values))).toBe(referenceGroupHolds(given, values));
      }),
      { numRuns: 1_000 },
    );
  });

  it("evaluate every rule of a group, even when the first decides the combination", () => {
    fc.assert(
      fc.property(group, vars, (given, values) => {
        const read = new Set<string>();
        routeCondition(given, {}, (path) => {
          read.add(path.split(" ")[0] as string);
          return getPath(values, path);
        });
        const leaves: string[] = [];
        const walk = (g: ConditionGroup) => {
          for (const rule of g.rules)
            if (rule.sub_conditions) walk(rule.sub_conditions);
            // An expression stops at its first missing operand; its rule was still evaluated.
            else leaves.push((rule.variable as string).split(" + ")[0] as string);
        };
        walk(given);
        for (const name of leaves) expect(read.has(name)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe("conditions, examples from MOVA.md", () => {
  const resolve = resolverOf({ price: 12, budget: 30 });
  it("NOT means not all; logic defaults to AND and is read in any case", () => {
    const rules: Condition[] = [
      { variable: "price", operator: "less_than", value: 20, next_step_id: "cheap" },
      { variable: "budget", operator: "less_than", value: 10 },
    ];
    expect(routeCondition({ logic: "NOT", rules }, {}, resolve)).toEqual({ holds: true, next: "cheap" });
    expect(routeCondition({ logic: "AND", rules, default_next_step_id: "d" }, {}, resolve)).toEqual({
      holds: false,
      next: "d",
    });
    expect(routeCondition({ logic: "OR", rules }, {}, resolve).next).toBe("cheap");
  });

  it("a rule that cannot be evaluated is false, never an error", () => {
    const bad: Condition[] = [
      { variable: "price * 'x'", operator: "equals", value: 0 },
      { variable: "price / 0", operator: "not_equals", value: 1 },
      { variable: "price", operator: "in_range", value: [1] },
      { variable: "price", operator: "matches_regex", value: "(" },
      { variable: "1 +", operator: "equals", value: 1 },
    ];
    for (const rule of bad)
      expect(routeCondition([rule], {}, resolve).holds, JSON.stringify(rule)).toBe(false);
  });

  it("in_range is inclusive and numeric; matches_regex matches at the start only", () => {
    const r = (variable: string, operator: string, value: unknown) =>
      evaluateConditions(
        [{ variable, operator, value } as Condition],
        resolverOf({ n: 5, s: "12", t: "pizza time" } as never),
      );
    expect(r("n", "in_range", [5, 5])).toBe(true);
    expect(r("s", "in_range", ["10", 12])).toBe(true);
    expect(r("n", "in_range", [6, 9])).toBe(false);
    expect(r("t", "matches_regex", "pizza")).toBe(true);
    expect(r("t", "matches_regex", "time")).toBe(false);
    expect(r("t", "matches_regex", ".*time$")).toBe(true);
  });
});
