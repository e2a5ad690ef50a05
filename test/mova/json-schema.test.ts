import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MOVA_SCHEMA_ID, movaJsonSchema, movaJsonSchemaText } from "../../lib/mova/json-schema.ts";
import { parseSource } from "../../lib/mova/parse.ts";
import { TOP_LEVEL_KEYS } from "../../lib/mova/schema.ts";

const committedText = readFileSync(new URL("../../schema/mova.schema.json", import.meta.url), "utf8");
const committed = JSON.parse(committedText) as Schema;
const fixture = (name: string) =>
  parseSource(readFileSync(new URL(`../fixtures/mova/${name}`, import.meta.url), "utf8"));

// biome-ignore lint/suspicious/noExplicitAny: generated JSON Schema, walked dynamically
type Schema = Record<string, any>;

/**
 * A checker for the part of JSON Schema the generator emits (type, properties, required,
 * items, anyOf/oneOf, const, enum, bounds, $ref, additionalProperties): enough to tell
 * whether the committed schema accepts the documents the validator accepts.
 */
function schemaErrors(schema: Schema, value: unknown, root: Schema, path = "$"): string[] {
  if (schema.$ref) {
    const name = String(schema.$ref).replace("#/$defs/", "");
    return schemaErrors(root.$defs[name], value, root, path);
  }
  const errors: string[] = [];
  if (schema.anyOf || schema.oneOf) {
    const options: Schema[] = schema.anyOf ?? schema.oneOf;
    const passing = options.filter((option) => schemaErrors(option, value, root, path).length === 0).length;
    if (schema.anyOf ? passing === 0 : passing !== 1)
      errors.push(`${path}: matches ${passing} of the alternatives`);
    return errors;
  }
  if (schema.const !== undefined && value !== schema.const) errors.push(`${path}: not ${schema.const}`);
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${path}: not in enum`);
  const type = schema.type;
  const actual = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  if (type) {
    const ok =
      type === actual ||
      (type === "integer" && Number.isInteger(value)) ||
      (type === "number" && actual === "number");
    if (!ok) return [`${path}: expected ${type}, got ${actual}`];
  }
  if (typeof value === "string" && schema.minLength !== undefined && value.length < schema.minLength) {
    errors.push(`${path}: too short`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: below minimum`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: above maximum`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      errors.push(`${path}: too few items`);
    if (schema.items)
      for (const [i, item] of value.entries())
        errors.push(...schemaErrors(schema.items, item, root, `${path}[${i}]`));
  }
  if (actual === "object") {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in object)) errors.push(`${path}: missing ${key}`);
    for (const [key, item] of Object.entries(object)) {
      const property =
        schema.properties?.[key] ??
        (typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined);
      if (property) errors.push(...schemaErrors(property, item, root, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected ${key}`);
    }
  }
  return errors;
}

describe("schema/mova.schema.json", () => {
  it("is up to date with the zod schemas (run `npm run schema` when this fails)", () => {
    expect(committedText).toBe(movaJsonSchemaText());
  });

  it("describes a MOVA document with a required version and every section", () => {
    const schema = movaJsonSchema();
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema.$id).toBe(MOVA_SCHEMA_ID);
    expect(schema.title).toBe("MOVA document");
    expect(schema.type).toBe("object");
    expect(schema.required).toEqual(["version"]);
    expect(Object.keys(schema.properties as object).sort()).toEqual([...TOP_LEVEL_KEYS, "classes"].sort());
    // Unknown fields are warnings, so the schema must not forbid them.
    expect(JSON.stringify(schema)).not.toContain('"additionalProperties":false');
  });

  it("makes fields with defaults optional (the input side)", () => {
    const tool = committed.properties.tools.items;
    expect(tool.required).toEqual(["id", "endpoint"]);
    const intent = committed.properties.intents.items;
    expect(intent.required).toEqual(["name", "patterns"]);
  });

  it("accepts the valid fixtures", () => {
    for (const name of ["original-2.0.json", "original-2.2-presets.json", "support-form.yaml"]) {
      expect(schemaErrors(committed, fixture(name), committed), name).toEqual([]);
    }
  });

  it("accepts the classes form, one object or a list per class", () => {
    const pizza = JSON.parse(
      readFileSync(new URL("../../examples/pizza-order-classes.json", import.meta.url), "utf8"),
    );
    expect(schemaErrors(committed, pizza, committed)).toEqual([]);
    const lists = { ...pizza, classes: { ...pizza.classes, protocol: [pizza.classes.protocol] } };
    expect(schemaErrors(committed, lists, committed)).toEqual([]);
    const broken = { version: "2.2", classes: { protocol: { name: "p" } } };
    expect(schemaErrors(committed, broken, committed)).toEqual([
      "$.classes.protocol: matches 0 of the alternatives",
    ]);
  });

  it("refuses documents with the wrong shape", () => {
    expect(schemaErrors(committed, fixture("broken/schema.json"), committed)).toEqual([
      "$.intents[0].patterns: too few items",
      "$.protocols[0].steps[0]: matches 0 of the alternatives",
      "$.protocols[0].steps[1]: matches 0 of the alternatives",
    ]);
    expect(schemaErrors(committed, { intents: [] }, committed)).toEqual(["$: missing version"]);
    expect(schemaErrors(committed, { version: "2.2", tools: [{ id: "t" }] }, committed)).toEqual([
      "$.tools[0]: missing endpoint",
    ]);
  });
});
