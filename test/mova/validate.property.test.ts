import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify as toYaml } from "yaml";
import { parseSource } from "../../lib/mova/parse.ts";
import { type ValidationResult, validateDocument } from "../../lib/mova/validate.ts";

const CODES = new Set([
  "schema",
  "unsupported_version",
  "duplicate_id",
  "unknown_reference",
  "invalid_operator",
  "invalid_placeholder",
  "invalid_method",
  "invalid_endpoint",
  "no_exit",
  "unreachable_step",
  "unresolvable_placeholder",
  "missing_else",
  "unknown_field",
  "invalid_expression",
]);
const WARNING_CODES = new Set([
  "unreachable_step",
  "unresolvable_placeholder",
  "missing_else",
  "unknown_field",
]);

function expectResultShape(result: ValidationResult): void {
  expect(typeof result.valid).toBe("boolean");
  expect(Array.isArray(result.errors)).toBe(true);
  expect(Array.isArray(result.warnings)).toBe(true);
  for (const issue of [...result.errors, ...result.warnings]) {
    expect(CODES.has(issue.code)).toBe(true);
    expect(issue.path.startsWith("$")).toBe(true);
    expect(typeof issue.message).toBe("string");
    expect(issue.message.length).toBeGreaterThan(0);
  }
  for (const issue of result.errors) expect(WARNING_CODES.has(issue.code)).toBe(false);
  for (const issue of result.warnings) expect(WARNING_CODES.has(issue.code)).toBe(true);
  expect(result.valid).toBe(result.errors.length === 0);
  expect(result.document !== undefined).toBe(result.valid);
}

const fixtures = [
  ...["original-2.0.json", "original-2.2-presets.json", "support-form.yaml"].map((name) =>
    parseSource(readFileSync(new URL(`../fixtures/mova/${name}`, import.meta.url), "utf8")),
  ),
  // The specification's classes form, with groups, nested rules and expressions.
  parseSource(readFileSync(new URL("../../examples/pizza-order-classes.json", import.meta.url), "utf8")),
];

type Path = Array<string | number>;

/** Every path inside a JSON value, the root excluded. */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push([...prefix, i], ...pathsOf(item, [...prefix, i]));
    });
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value))
      out.push([...prefix, key], ...pathsOf(item, [...prefix, key]));
  }
  return out;
}

type Mutation =
  | { kind: "delete" }
  | { kind: "set"; value: unknown }
  | { kind: "retype" }
  | { kind: "rename"; name: string }
  | { kind: "duplicate" };

function mutate(document: unknown, path: Path, mutation: Mutation): unknown {
  const copy = structuredClone(document) as Record<string | number, unknown>;
  // biome-ignore lint/suspicious/noExplicitAny: walks arbitrary JSON by path
  let parent: any = copy;
  for (const segment of path.slice(0, -1)) parent = parent[segment];
  const last = path.at(-1)!;
  const current = parent[last];
  switch (mutation.kind) {
    case "delete":
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      break;
    case "set":
      parent[last] = mutation.value;
      break;
    case "retype":
      parent[last] =
        typeof current === "string"
          ? current.length
          : typeof current === "number"
            ? String(current)
            : Array.isArray(current)
              ? Object.fromEntries(current.map((item, i) => [String(i), item]))
              : current !== null && typeof current === "object"
                ? Object.values(current)
                : [current];
      break;
    case "rename":
      if (typeof current === "string") parent[last] = mutation.name;
      break;
    case "duplicate":
      if (Array.isArray(parent)) parent.push(structuredClone(current));
      else parent[`${String(last)}_copy`] = current;
      break;
  }
  return copy;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant<Mutation>({ kind: "delete" }),
  fc.jsonValue({ maxDepth: 3 }).map((value): Mutation => ({ kind: "set", value })),
  fc.constant<Mutation>({ kind: "retype" }),
  fc
    .oneof(
      fc.string(),
      fc.constantFrom("end", "ask_city", "weather_service", "{}", "__proto__", "constructor"),
    )
    .map((name): Mutation => ({ kind: "rename", name })),
  fc.constant<Mutation>({ kind: "duplicate" }),
);

/** Text with no braces, so it holds no placeholders at all. */
const plainText = fc.string({ maxLength: 40 }).map((s) => s.replace(/[{}]/g, ""));
const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,11}$/);

/** Documents that are valid by construction: unique names, linear flows, no placeholders. */
const validDocumentArb = fc
  .record({
    version: fc.constantFrom("2.0", "2.1", "2.2", 2.2),
    protocolNames: fc.uniqueArray(name, { minLength: 1, maxLength: 3 }),
    stepIds: fc.uniqueArray(name, { minLength: 1, maxLength: 6 }),
    prompts: fc.array(plainText, { minLength: 6, maxLength: 6 }),
    intentNames: fc.uniqueArray(name, { maxLength: 3 }),
    patterns: fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 3 }),
    priority: fc.integer({ min: -5, max: 5 }),
  })
  .map(({ version, protocolNames, stepIds, prompts, intentNames, patterns, priority }) => ({
    version,
    intents: intentNames.map((intentName) => ({
      name: intentName,
      patterns,
      priority,
      protocol: protocolNames[0],
    })),
    protocols: protocolNames.map((protocolName) => ({
      name: protocolName,
      description: prompts[0],
      steps: [
        ...stepIds.map((id, i) => ({ id, action: "prompt", prompt: prompts[i] ?? "" })),
        { id: "finish-step", action: "end", response_template: prompts[5] },
      ],
    })),
    tools: [
      { id: "t", endpoint: "https://api.example.com/v1", method: "post", parameters: { text: prompts[1] } },
    ],
  }));

describe("validateDocument never throws", () => {
  it("on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (input) => {
        expectResultShape(validateDocument(input));
      }),
      { numRuns: 500 },
    );
  });

  it("on arbitrary values of any kind", () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
          withTypedArray: true,
        }),
        (input) => {
          expectResultShape(validateDocument(input));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("on documents with a good version and arbitrary sections", () => {
    const section = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.array(
        fc.dictionary(
          fc.constantFrom(
            "id",
            "name",
            "action",
            "steps",
            "next_step",
            "conditions",
            "prompt",
            "endpoint",
            "method",
            "__proto__",
          ),
          fc.jsonValue({ maxDepth: 3 }),
        ),
      ),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            version: fc.constantFrom("2.2", 2, "3"),
            intents: section,
            protocols: section,
            tools: section,
            instructions: section,
          },
          { requiredKeys: ["version"] },
        ),
        (input) => {
          expectResultShape(validateDocument(input));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("on mutations of valid documents", () => {
    const cases = fixtures.map((document) => ({ document, paths: pathsOf(document) }));
    fc.assert(
      fc.property(
        fc.nat({ max: cases.length - 1 }),
        fc.array(fc.tuple(fc.nat(), mutationArb), { minLength: 1, maxLength: 4 }),
        (which, mutations) => {
          let document = cases[which]!.document;
          for (const [pick, mutation] of mutations) {
            const paths = pathsOf(document);
            if (paths.length === 0) break;
            document = mutate(document, paths[pick % paths.length]!, mutation);
          }
          expectResultShape(validateDocument(document));
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("valid documents", () => {
  it("the fixtures stay valid through a JSON and a YAML round trip, to the same document", () => {
    for (const input of fixtures) {
      const first = validateDocument(input);
      expect(first.valid).toBe(true);
      const viaJson = validateDocument(parseSource(JSON.stringify(input), "json"));
      const viaYaml = validateDocument(parseSource(toYaml(input), "yaml"));
      expect(viaJson.document).toEqual(first.document);
      expect(viaYaml.document).toEqual(first.document);
    }
  });

  it("generated valid documents are valid, stable under round trips, and normalise to a fixed point", () => {
    fc.assert(
      fc.property(validDocumentArb, (input) => {
        const result = validateDocument(input);
        expect(result.errors).toEqual([]);
        expect(result.warnings).toEqual([]);
        const document = result.document!;
        expect(validateDocument(parseSource(JSON.stringify(input))).document).toEqual(document);
        expect(validateDocument(parseSource(toYaml(input), "yaml")).document).toEqual(document);
        const again = validateDocument(structuredClone(document));
        expect(again.valid).toBe(true);
        expect(again.document).toEqual(document);
      }),
      { numRuns: 200 },
    );
  });
});
