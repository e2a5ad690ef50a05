import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type CompiledSchema,
  compileSchema,
  isStrictCompatible,
  smallestInstance,
} from "../../lib/mova/response-schema.ts";

const compiled = (schema: unknown) => {
  const result = compileSchema(schema);
  if ("error" in result) throw new Error(result.error);
  return result as CompiledSchema;
};

const triage = {
  type: "object",
  properties: {
    category: { type: "string", enum: ["billing", "order", "other"] },
    priority: { type: "integer", minimum: 1, maximum: 5 },
    email: { type: "string", format: "email" },
    tags: { type: "array", items: { type: "string", minLength: 2 }, minItems: 1 },
  },
  required: ["category", "priority", "email", "tags"],
  additionalProperties: false,
};

describe("compileSchema", () => {
  it("matches patterns in linear time (RE2JS), whatever the pattern", () => {
    // A backtracking engine takes 2^40 steps on this answer; RE2 reads it once.
    const schema = compiled({ type: "string", pattern: "^(a+)+$" });
    expect(schema.problems(`${"a".repeat(40)}!`)[0]).toContain('must match pattern "^(a+)+$"');
    expect(schema.problems("a".repeat(40))).toEqual([]);
    const keyed = compiled({ type: "object", patternProperties: { "^(x+)+$": { type: "integer" } } });
    expect(keyed.problems({ xxxx: "no" })[0]).toContain("must be integer");
    expect(keyed.problems({ [`${"x".repeat(40)}!`]: "not matched, so free" })).toEqual([]);
  });

  it("keeps each pattern its own (compiled patterns are not mixed up)", () => {
    const digits = compiled({ type: "string", pattern: "^[0-9]+$" });
    const letters = compiled({ type: "string", pattern: "^[a-z]+$" });
    expect(digits.problems("123")).toEqual([]);
    expect(digits.problems("abc")).toHaveLength(1);
    expect(letters.problems("abc")).toEqual([]);
    expect(letters.problems("123")).toHaveLength(1);
  });

  it("validates values and describes what is wrong", () => {
    const schema = compiled(triage);
    expect(schema.problems({ category: "order", priority: 2, email: "a@b.co", tags: ["ab"] })).toEqual([]);
    expect(schema.problems({ category: "order", priority: 9, email: "a@b.co", tags: ["ab"] })).toEqual([
      "the answer's /priority must be <= 5",
    ]);
    expect(schema.problems({ category: "order", priority: 2, email: "nope", tags: ["ab"] })[0]).toContain(
      "/email",
    );
    expect(schema.problems("text")).toEqual(["the answer must be object"]);
  });

  it("compiles one schema once, whatever object holds it", () => {
    expect(compileSchema(structuredClone(triage))).toBe(compileSchema(structuredClone(triage)));
  });

  it("says why a schema is unusable", () => {
    expect(compileSchema({ type: "strong" })).toHaveProperty("error");
    expect(compileSchema([])).toEqual({ error: "a JSON Schema must be an object" });
    expect(compileSchema({ type: "string", pattern: "(" })).toHaveProperty("error");
    expect(compileSchema({ type: "string", pattern: "a".repeat(2000) })).toHaveProperty("error");
    // An $id would be registered for every later schema, another tenant's included.
    expect(compileSchema({ $id: "https://x.example/s", type: "string" })).toHaveProperty("error");
    expect(compileSchema({ $ref: "https://elsewhere.example/schema.json" })).toHaveProperty("error");
  });
});

describe("isStrictCompatible", () => {
  it("is true only when every object requires all its properties and forbids others", () => {
    expect(isStrictCompatible(triage)).toBe(true);
    expect(isStrictCompatible({ ...triage, required: ["category"] })).toBe(false);
    expect(
      isStrictCompatible({ type: "object", properties: { a: { type: "string" } }, required: ["a"] }),
    ).toBe(false);
    expect(
      isStrictCompatible({
        type: "object",
        properties: { inner: { type: "object", properties: { b: {} } } },
        required: ["inner"],
        additionalProperties: false,
      }),
    ).toBe(false);
  });
});

describe("smallestInstance", () => {
  it("builds the smallest value of a schema", () => {
    expect(smallestInstance(triage)).toEqual({
      category: "billing",
      priority: 1,
      email: "a@example.com",
      tags: ["aa"],
    });
    expect(smallestInstance({ type: ["null", "string"], minLength: 3 })).toBe("aaa");
    expect(smallestInstance({ anyOf: [{ type: "boolean" }, { type: "string" }] })).toBe(false);
    expect(smallestInstance({ const: 42 })).toBe(42);
    expect(smallestInstance({ type: "integer", exclusiveMinimum: 3 })).toBe(4);
  });

  // Schemas of the shapes structured outputs use: objects of typed, bounded properties.
  const leaf = fc.oneof(
    fc.record({ type: fc.constant("string"), minLength: fc.nat(5) }),
    fc.record({ type: fc.constant("integer"), minimum: fc.integer({ min: -10, max: 10 }) }),
    fc.record({ type: fc.constant("number"), maximum: fc.integer({ min: -10, max: -1 }) }),
    fc.record({ type: fc.constant("boolean") }),
    fc.record({ enum: fc.array(fc.string(), { minLength: 1, maxLength: 3 }) }),
  );
  const schemaArb = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: "small" }, leaf, tie("object"), tie("array")),
    object: fc
      .dictionary(fc.stringMatching(/^[a-z]{1,6}$/), tie("node"), { maxKeys: 4 })
      .chain((properties) =>
        fc.record({
          type: fc.constant("object"),
          properties: fc.constant(properties),
          required: fc.subarray(Object.keys(properties)),
        }),
      ),
    array: fc.record({ type: fc.constant("array"), items: tie("node"), minItems: fc.nat(3) }),
  })).object;

  it("is accepted by the schema it was built from", () => {
    fc.assert(
      fc.property(schemaArb, (schema) => {
        expect(compiled(schema).problems(smallestInstance(schema))).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});
