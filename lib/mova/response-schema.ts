/**
 * JSON Schemas written in documents (a prompt step's `response_schema`, a tool's parameters):
 * compiled once per schema by Ajv (draft 2020-12, the formats of ajv-formats), checked for
 * usability at validation, and the smallest instance of one (what the offline model answers).
 *
 * Schemas come from tenants, so compiling is bounded: no remote `$ref` is ever loaded (Ajv
 * only loads schemas it is given), `pattern`s are length-limited like condition patterns and
 * run on the same linear-time engine (RE2JS), and the document validator has already bounded
 * the schema's size and depth.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { compilePattern } from "./regex.ts";

export type JsonSchema = Record<string, unknown>;

export interface CompiledSchema {
  /** The problems of `value` against the schema (at most a few, each one line), none when it is valid. */
  problems(value: unknown): string[];
}

const MAX_PROBLEMS = 5;
const CACHE_LIMIT = 500;

// Unknown keywords are ignored rather than refused: documents carry annotations of their own.
// The first error is enough to tell the model what to fix (allErrors costs more on big answers).
// `pattern` and `patternProperties` run on RE2JS, as conditions' patterns do (./regex.ts): Ajv's
// default, the backtracking RegExp, would let a tenant's `^(a+)+$` stall the event loop on a
// model's answer. Ajv caches compiled patterns by `toString()`, so each must say its pattern.
const re2Engine = Object.assign(
  (pattern: string): { test(text: string): boolean; toString(): string } => {
    const compiled = compilePattern(pattern);
    if ("error" in compiled) throw new Error(`unusable pattern: ${compiled.error}`);
    return { test: (text) => compiled.test(text), toString: () => `re2js:${pattern}` };
  },
  { code: "re2js" },
);
const ajv = new Ajv2020({ strict: false, allErrors: false, logger: false, code: { regExp: re2Engine } });
// ajv-formats is CommonJS: its function is the default export under Node, `.default` under some bundlers.
const formatsPlugin = (addFormats as unknown as { default?: (a: Ajv2020) => void }).default ?? addFormats;
(formatsPlugin as unknown as (a: Ajv2020) => void)(ajv);

interface CacheEntry {
  schema: JsonSchema;
  compiled: CompiledSchema | { error: string };
}

// Compiled validators by the schema's text: a document is parsed anew for each run, and the
// same schema must not be compiled again each time. Ajv keeps its own cache by schema object,
// so an evicted schema is removed from Ajv too.
const cache = new Map<string, CacheEntry>();

/** Compiles `schema` (cached by its JSON text), or says why it is not a usable JSON Schema. */
export function compileSchema(schema: unknown): CompiledSchema | { error: string } {
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    return { error: "a JSON Schema must be an object" };
  }
  const key = JSON.stringify(schema);
  const cached = cache.get(key);
  if (cached) return cached.compiled;
  const compiled = compileUncached(schema as JsonSchema);
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next().value as string;
    const evicted = cache.get(oldest);
    cache.delete(oldest);
    if (evicted && !("error" in evicted.compiled)) ajv.removeSchema(evicted.schema);
  }
  cache.set(key, { schema: schema as JsonSchema, compiled });
  return compiled;
}

function compileUncached(schema: JsonSchema): CompiledSchema | { error: string } {
  const badPattern = findBadPattern(schema);
  if (badPattern) return { error: badPattern };
  // Ajv registers a schema's `$id` for every later compilation: one tenant's schema must not
  // be reachable from (or collide with) another's.
  if (JSON.stringify(schema).includes('"$id"'))
    return { error: "`$id` is not allowed in a document's schema" };
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (error) {
    return { error: (error as Error).message };
  }
  return {
    problems(value: unknown): string[] {
      if (validate(value)) return [];
      return (validate.errors ?? []).slice(0, MAX_PROBLEMS).map(describeError);
    },
  };
}

function describeError(error: ErrorObject): string {
  const where = error.instancePath === "" ? "the answer" : `the answer's ${error.instancePath}`;
  return `${where} ${error.message ?? "is invalid"}`;
}

/** Every `pattern` of the schema must compile within the length limit of condition patterns. */
function findBadPattern(schema: unknown): string | undefined {
  const stack: unknown[] = [schema];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object") continue;
    if (Array.isArray(node)) {
      stack.push(...node);
      continue;
    }
    for (const [key, value] of Object.entries(node)) {
      if (key === "pattern" && typeof value === "string") {
        const compiled = compilePattern(value);
        if ("error" in compiled) return `unusable pattern: ${compiled.error}`;
      } else if (key === "patternProperties" && value && typeof value === "object") {
        for (const pattern of Object.keys(value)) {
          const compiled = compilePattern(pattern);
          if ("error" in compiled) return `unusable pattern: ${compiled.error}`;
        }
      }
      stack.push(value);
    }
  }
  return undefined;
}

/**
 * Whether OpenAI's strict structured outputs accept the schema: every object lists all its
 * properties as required and forbids others. Other schemas are sent without `strict`.
 */
export function isStrictCompatible(schema: unknown): boolean {
  const stack: unknown[] = [schema];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object") continue;
    if (Array.isArray(node)) {
      stack.push(...node);
      continue;
    }
    const object = node as JsonSchema;
    const properties = object.properties;
    if (object.type === "object" || (properties && typeof properties === "object")) {
      if (object.additionalProperties !== false) return false;
      const names = Object.keys((properties as object | undefined) ?? {});
      const required = Array.isArray(object.required) ? object.required : [];
      if (!names.every((name) => required.includes(name))) return false;
    }
    for (const value of Object.values(object)) stack.push(value);
  }
  return true;
}

const MAX_INSTANCE_DEPTH = 20;

/**
 * The smallest value the schema accepts, as far as a simple walk can tell: an object with its
 * required properties only, empty or minimal strings and arrays, the lowest allowed number,
 * the first of an `enum`, the `const`. What the offline model answers to a `response_schema`.
 */
export function smallestInstance(schema: unknown, depth = 0): unknown {
  if (schema === null || typeof schema !== "object" || depth > MAX_INSTANCE_DEPTH) return null;
  const s = schema as JsonSchema;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  for (const key of ["anyOf", "oneOf"]) {
    const options = s[key];
    if (Array.isArray(options) && options.length > 0) return smallestInstance(options[0], depth + 1);
  }
  if (Array.isArray(s.allOf) && s.allOf.length > 0) {
    const merged: JsonSchema = {};
    for (const part of s.allOf) if (part && typeof part === "object") Object.assign(merged, part);
    return smallestInstance({ ...merged, ...withoutKey(s, "allOf") }, depth + 1);
  }
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== "null") ?? s.type[0]) : s.type;
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      const required = Array.isArray(s.required) ? (s.required as string[]) : [];
      for (const name of required) out[name] = smallestInstance(properties[name] ?? {}, depth + 1);
      return out;
    }
    case "array": {
      const count = typeof s.minItems === "number" ? Math.min(s.minItems, 100) : 0;
      return Array.from({ length: count }, () => smallestInstance(s.items ?? {}, depth + 1));
    }
    case "string":
      return smallestString(s);
    case "integer":
    case "number":
      return smallestNumber(s, type === "integer");
    case "boolean":
      return false;
    case "null":
      return null;
    default:
      if (s.properties && typeof s.properties === "object")
        return smallestInstance({ ...s, type: "object" }, depth);
      return null;
  }
}

function withoutKey(object: JsonSchema, key: string): JsonSchema {
  const { [key]: _dropped, ...rest } = object;
  return rest;
}

const FORMAT_EXAMPLES: Record<string, string> = {
  email: "a@example.com",
  date: "2000-01-01",
  "date-time": "2000-01-01T00:00:00Z",
  time: "00:00:00Z",
  uri: "https://example.com",
  url: "https://example.com",
  uuid: "00000000-0000-0000-0000-000000000000",
};

function smallestString(s: JsonSchema): string {
  if (typeof s.format === "string" && Object.hasOwn(FORMAT_EXAMPLES, s.format)) {
    return FORMAT_EXAMPLES[s.format] as string;
  }
  const length = typeof s.minLength === "number" ? Math.min(s.minLength, 1000) : 0;
  return "a".repeat(length);
}

function smallestNumber(s: JsonSchema, integer: boolean): number {
  let value = 0;
  if (typeof s.minimum === "number") value = s.minimum;
  else if (typeof s.exclusiveMinimum === "number")
    value = s.exclusiveMinimum + (integer ? 1 : Number.EPSILON);
  else if (typeof s.maximum === "number" && s.maximum < 0) value = s.maximum;
  else if (typeof s.exclusiveMaximum === "number" && s.exclusiveMaximum <= 0) value = s.exclusiveMaximum - 1;
  return integer ? Math.ceil(value) : value;
}
