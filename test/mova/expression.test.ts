import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compileOperand,
  evaluateExpression,
  MAX_EXPRESSION_LENGTH,
  operandPaths,
  readOperand,
} from "../../lib/mova/expression.ts";
import { validateDocument } from "../../lib/mova/validate.ts";

const vars = {
  session: { data: { budget: 40, user_name: "Ada", text_number: "12" } },
  order: { total: 19.5, items: [{ price: 7 }] },
  zero: 0,
  word: "pizza",
};
const value = (source: string) => {
  const result = evaluateExpression(source, vars);
  return result.ok ? result.value : "NO VALUE";
};

describe("expressions", () => {
  it("compute numbers, join text with +, and respect precedence and parentheses", () => {
    expect(value("session.data.budget * 0.9")).toBe(36);
    expect(value("session.data.user_name + ' VIP'")).toBe("Ada VIP");
    expect(value("order.total + 0.5")).toBe(20);
    expect(value("1 + 2 * 3")).toBe(7);
    expect(value("(1 + 2) * 3")).toBe(9);
    expect(value("-order.total")).toBe(-19.5);
    expect(value("session.data.text_number * 2")).toBe(24);
    expect(value("session.data.text_number + 1")).toBe("121");
    expect(value("order.items[0].price - 2")).toBe(5);
    expect(value('"a" + true + null')).toBe("atruenull");
  });

  it("have no value where arithmetic cannot be done", () => {
    expect(value("word * 2")).toBe("NO VALUE");
    expect(value("order.total / zero")).toBe("NO VALUE");
    expect(value("missing + 1")).toBe("NO VALUE");
    expect(value("1e308 * 10")).toBe("NO VALUE");
    expect(value("1e999")).toBe("NO VALUE");
  });

  it("read a plain path (or a braced one) as a path, and list the paths an expression reads", () => {
    expect(compileOperand("order.items.0.price")).toEqual({
      ok: true,
      operand: { kind: "path", path: "order.items.0.price" },
    });
    expect(compileOperand("{order.total}")).toEqual({
      ok: true,
      operand: { kind: "path", path: "order.total" },
    });
    const compiled = compileOperand("session.data.budget - order.total * 2");
    expect(compiled.ok && operandPaths(compiled.operand)).toEqual(["session.data.budget", "order.total"]);
  });

  it("refuse everything beyond the whitelist", () => {
    for (const source of [
      "foo()",
      "order.total.toFixed(2)",
      "a.constructor",
      "__proto__",
      "a['__proto__']",
      "a[b]",
      "this.a + 1",
      "a ? b : c",
      "!a",
      "~a",
      "+a",
      "a == b",
      "a && b",
      "a = 1",
      "[1, 2]",
      "secrets.TOKEN + ''",
      "a?.b + 1",
      "1 +",
      "'unterminated",
      "   ",
      "a, b",
      `${"(".repeat(60)}1${")".repeat(60)}`,
      `${"-".repeat(60)}1`,
      `${"x + ".repeat(MAX_EXPRESSION_LENGTH / 4)}x`,
    ]) {
      const compiled = compileOperand(source);
      expect(compiled.ok, source).toBe(false);
      expect(readOperand(source, () => 1)).toEqual({ ok: false });
    }
  });

  it("are `invalid_expression` at validation", () => {
    const result = validateDocument({
      version: "2.2",
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "c",
              action: "condition",
              conditions: [{ variable: "order.total * (2", operator: "greater_than", value: 1 }],
              else_step: "e",
            },
            { id: "e", action: "end" },
          ],
        },
      ],
    });
    expect(result.errors).toEqual([
      expect.objectContaining({
        code: "invalid_expression",
        path: "$.protocols[0].steps[0].conditions[0].variable",
      }),
    ]);
  });
});

const HOSTILE_TOKENS = [
  "(",
  ")",
  "[",
  "]",
  ".",
  "'",
  '"',
  "+",
  "-",
  "*",
  "/",
  "?",
  ":",
  ",",
  " ",
  "\\",
  "`",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "this",
  "new",
  "Function",
  "eval",
  "process",
  "globalThis",
  "session.data.budget",
  "order",
  "1e999",
  "-1e-999",
  "9".repeat(400),
  "0x1F",
  "NaN",
  "Infinity",
  "\u0000",
  "ї",
];

describe("expressions under hostile input (fuzz)", () => {
  it("never throw, never read a prototype, and always answer", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...HOSTILE_TOKENS), { maxLength: 300 }).map((tokens) => tokens.join("")),
        (source) => {
          const result = readOperand(source, (path) => {
            // The resolver only ever sees plain, prototype-free paths.
            expect(path.split(".")).not.toContain("__proto__");
            expect(path.split(".")).not.toContain("constructor");
            return path === "session.data.budget" ? 40 : undefined;
          });
          expect(typeof result.ok).toBe("boolean");
          if (result.ok)
            expect(["number", "string", "boolean", "object", "undefined"]).toContain(typeof result.value);
        },
      ),
      { numRuns: 3_000 },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("answer at once on very deep nesting and very long input", () => {
    for (const source of [
      `${"(".repeat(100_000)}1${")".repeat(100_000)}`,
      `${"-".repeat(100_000)}1`,
      `${"1+".repeat(400)}1`,
      `${"[".repeat(400)}`,
      `${"(".repeat(40)}${"a[".repeat(40)}`,
      "9".repeat(100_000),
    ]) {
      expect(
        readOperand(source, () => 1),
        source.slice(0, 20),
      ).toEqual({ ok: false });
    }
    // A long plain path is still a path (read by the resolver, own properties only).
    expect(readOperand(`${"a.".repeat(50_000)}b`, () => 1)).toEqual({ ok: true, value: 1 });
    // Within the limits, a flat sum evaluates.
    expect(readOperand(`${"1+".repeat(20)}1`, () => undefined)).toEqual({ ok: true, value: 21 });
  });
});
