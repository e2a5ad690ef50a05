import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assertBoundedInput, jsonDepth } from "../../lib/core/input-bounds.ts";
import { isMovaError } from "../../lib/errors.ts";

function nestedArray(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe("jsonDepth", () => {
  it("counts levels of objects and lists without recursion (100,000 deep)", () => {
    expect(jsonDepth(1)).toBe(0);
    expect(jsonDepth({})).toBe(1);
    expect(jsonDepth({ a: [1, { b: 2 }] })).toBe(3);
    expect(jsonDepth(nestedArray(100_000))).toBe(100_000);
    expect(jsonDepth(nestedArray(100_000), 10)).toBe(11);
  });

  it("agrees with a recursive count on arbitrary JSON", () => {
    const recursive = (value: unknown): number =>
      value !== null && typeof value === "object"
        ? 1 + Math.max(0, ...Object.values(value as object).map(recursive))
        : 0;
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => jsonDepth(value) === recursive(value)));
  });
});

describe("assertBoundedInput", () => {
  const bounds = { maxDepth: 3, maxBytes: 100 };
  it("accepts values within bounds and undefined", () => {
    expect(() => assertBoundedInput({ a: { b: 1 } }, "variables", bounds)).not.toThrow();
    expect(() => assertBoundedInput(undefined, "variables", bounds)).not.toThrow();
  });
  it("refuses too deep with input_too_deep and too large with input_too_large", () => {
    const deep = (() => {
      try {
        assertBoundedInput({ a: { b: { c: { d: 1 } } } }, "`variables`", bounds);
      } catch (error) {
        return error;
      }
    })();
    expect(isMovaError(deep, "input_too_deep")).toBe(true);
    expect((deep as Error).message).toBe("`variables` is nested more than 3 levels deep");
    expect(() => assertBoundedInput({ s: "x".repeat(200) }, "data", bounds)).toThrow(/over 100 bytes/);
  });
});
