import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normaliseForm, writtenPath } from "../../lib/mova/classes.ts";
import { parseSource } from "../../lib/mova/parse.ts";
import { validateDocument } from "../../lib/mova/validate.ts";

type Raw = Record<string, unknown>;

const read = (path: string) => parseSource(readFileSync(new URL(path, import.meta.url), "utf8")) as Raw;
const SECTION_DOCUMENTS = [
  "../fixtures/mova/original-2.0.json",
  "../fixtures/mova/original-2.2-presets.json",
  "../fixtures/mova/support-form.yaml",
  "../../examples/support-form.json",
  "../../examples/weather-2.2.json",
  "../../examples/parallel-lookup.json",
  ...[
    "duplicate-id",
    "invalid-endpoint",
    "invalid-method",
    "invalid-operator",
    "invalid-placeholder",
    "no-exit",
    "schema",
    "unknown-reference",
  ].map((name) => `../fixtures/mova/broken/${name}.json`),
].map((path) => ({ path, document: read(path) }));

const CLASS_OF = {
  intents: "intent",
  protocols: "protocol",
  tools: "tool_api",
  profiles: "profile",
  contracts: "contract",
  instructions: "instruction",
} as const;

interface Spelling {
  /** Write a class holding one item as the object itself rather than a list of one. */
  single: boolean;
  /** Use the classes form's own names: url, text, next_step_id. */
  ownNames: boolean;
}

/**
 * The same document written in the classes form: what an author of the specification's form
 * would write for it. The sections form's list order is kept by `flow: "sequential"`.
 */
function toClasses(document: Raw, spelling: Spelling): Raw {
  const classes: Raw = {};
  const out: Raw = { ...document, classes };
  for (const [section, name] of Object.entries(CLASS_OF)) {
    delete out[section];
    const items = document[section];
    if (!Array.isArray(items)) continue;
    const written = items.map((item) => {
      if (item === null || typeof item !== "object" || Array.isArray(item) || !spelling.ownNames) {
        if (section === "protocols" && item && typeof item === "object" && !Array.isArray(item))
          return { flow: "sequential", ...(item as Raw) };
        return item;
      }
      const copy = { ...(item as Raw) };
      if (section === "tools" && "endpoint" in copy) {
        copy.url = copy.endpoint;
        delete copy.endpoint;
      }
      if (section === "instructions" && "content" in copy) {
        copy.text = copy.content;
        delete copy.content;
      }
      if (section === "protocols") {
        if (!("flow" in copy)) copy.flow = "sequential";
        if (Array.isArray(copy.steps))
          copy.steps = copy.steps.map((step) => {
            if (!step || typeof step !== "object" || !("next_step" in step)) return step;
            const { next_step, ...rest } = step as Raw;
            return { ...rest, next_step_id: next_step };
          });
      }
      return copy;
    });
    // A single tool_api object answers every tool id: only lists keep ids apart.
    classes[name] = spelling.single && written.length === 1 && section !== "tools" ? written[0] : written;
  }
  return out;
}

const codes = (issues: Array<{ code: string }>) => issues.map((issue) => issue.code).sort();

describe("the classes form", () => {
  it("loads into the same model as the sections form, for every fixture and example", () => {
    for (const { path, document } of SECTION_DOCUMENTS) {
      const sections = validateDocument(document);
      expect(sections.form).toBe("sections");
      for (const spelling of [
        { single: true, ownNames: true },
        { single: false, ownNames: false },
      ]) {
        const classes = validateDocument(toClasses(document, spelling));
        expect(classes.form, path).toBe("classes");
        expect(classes.valid, path).toBe(sections.valid);
        expect(codes(classes.errors), path).toEqual(codes(sections.errors));
        if (sections.document) {
          // The classes form's `flow` is written out; the sections form leaves it implicit.
          const expected = structuredClone(sections.document);
          for (const protocol of expected.protocols) protocol.flow = "sequential";
          expect(classes.document, path).toEqual(expected);
        }
      }
    }
  });

  it("loads any spelling of a fixture into the same model (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SECTION_DOCUMENTS),
        fc.boolean(),
        fc.boolean(),
        ({ document }, single, ownNames) => {
          const sections = validateDocument(document);
          const classes = validateDocument(toClasses(document, { single, ownNames }));
          expect(classes.valid).toBe(sections.valid);
          expect(codes(classes.warnings)).toEqual(codes(sections.warnings));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("prints a sections form that reads back into the same model (mova parse's output)", () => {
    const classes = validateDocument(read("../../examples/pizza-order-classes.json"));
    expect(classes.form).toBe("classes");
    const again = validateDocument(JSON.parse(JSON.stringify(classes.document)));
    expect(again.form).toBe("sections");
    expect(again.warnings).toEqual([]);
    expect(again.document).toEqual(classes.document);
  });

  it("reads the specification's flow: a step without next_step_id ends the run", () => {
    const result = validateDocument({
      version: "2.2",
      classes: {
        protocol: {
          name: "p",
          steps: [
            { id: "a", action: "prompt", prompt: "hi" },
            { id: "b", action: "end" },
          ],
        },
      },
    });
    expect(result.valid).toBe(true);
    expect(result.document?.protocols[0]?.flow).toBe("explicit");
    // `b` is never reached: `a` names no next step, so the run ends after it.
    expect(result.warnings).toContainEqual(
      expect.objectContaining({ code: "unreachable_step", path: "$.classes.protocol.steps[1]" }),
    );
  });

  it("maps each class: url, body, text, a single tool answering every id, the session", () => {
    const result = validateDocument({
      version: "2.2",
      classes: {
        tool_api: {
          url: "https://shop.example/orders",
          method: "post",
          body: { item: "{session.data.item}" },
          response_mapping: { order_id: "response.id" },
        },
        instruction: { id: "voice", text: "Be brief." },
        session: { data: { item: "pizza" }, ttl: 600 },
        protocol: {
          name: "p",
          steps: [
            { id: "order", action: "tool_api", tool_api_id: "anything", next_step_id: "done" },
            { id: "done", action: "end", response_template: "{order_id}" },
          ],
        },
      },
    });
    expect(result.errors).toEqual([]);
    const document = result.document!;
    expect(document.tools[0]).toMatchObject({
      id: "tool_api",
      endpoint: "https://shop.example/orders",
      method: "POST",
      parameters: { item: "{session.data.item}" },
      response_mapping: { order_id: "response.id" },
    });
    expect(document.protocols[0]?.steps[0]).toMatchObject({ tool_api_id: "tool_api", next_step: "done" });
    expect(document.instructions[0]).toEqual({ id: "voice", title: "voice", content: "Be brief." });
    expect(document.session).toEqual({ data: { item: "pizza" }, ttl: 600 });
    expect(result.warnings).toEqual([]);
  });

  it("points its messages at the document as written", () => {
    const result = validateDocument({
      version: "2.2",
      classes: {
        protocol: [
          {
            name: "p",
            steps: [
              { id: "a", action: "prompt", prompt: "hi", next_step_id: "nowhere" },
              {
                id: "b",
                action: "condition",
                conditions: [{ variable: "x +", operator: "equals", value: 1 }],
              },
            ],
          },
        ],
        tool_api: [{ id: "t", url: "ftp://x" }],
        gadget: {},
      },
    });
    expect(result.valid).toBe(false);
    const at = (code: string) => result.errors.concat(result.warnings).filter((i) => i.code === code);
    expect(at("unknown_reference")[0]?.path).toBe("$.classes.protocol[0].steps[0].next_step_id");
    expect(at("invalid_expression")[0]?.path).toBe("$.classes.protocol[0].steps[1].conditions[0].variable");
    expect(at("invalid_endpoint")[0]?.path).toBe("$.classes.tool_api[0].url");
    expect(at("unknown_field")[0]?.path).toBe("$.classes.gadget");
  });

  it("refuses a document mixing both forms, and classes that are not objects", () => {
    const mixed = validateDocument({ version: "2.2", classes: {}, protocols: [] });
    expect(mixed.errors).toEqual([expect.objectContaining({ code: "schema", path: "$.classes" })]);
    const notObject = validateDocument({ version: "2.2", classes: [] });
    expect(notObject.errors[0]).toMatchObject({ code: "schema", path: "$.classes" });
    const badClass = validateDocument({ version: "2.2", classes: { protocol: "p" } });
    expect(badClass.errors[0]).toMatchObject({ code: "schema", path: "$.classes.protocol" });
  });

  it("accepts next_step_id in the sections form too, and refuses two different next steps", () => {
    const steps = [
      { id: "a", action: "prompt", prompt: "hi", next_step_id: "c" },
      { id: "b", action: "end" },
      { id: "c", action: "end" },
    ];
    const result = validateDocument({ version: "2.2", protocols: [{ name: "p", steps }] });
    expect(result.document?.protocols[0]?.steps[0]?.next_step).toBe("c");
    const both = validateDocument({
      version: "2.2",
      protocols: [{ name: "p", steps: [{ ...steps[0], next_step: "b" }, steps[1], steps[2]] }],
    });
    expect(both.errors[0]).toMatchObject({ code: "schema", path: "$.protocols[0].steps[0].next_step_id" });
  });

  it("never throws and never changes its input, whatever the classes hold (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), fc.jsonValue({ maxDepth: 3 }), (classes, extra) => {
        const input = { version: "2.2", classes, extra };
        const before = JSON.stringify(input);
        const normalised = normaliseForm(input);
        expect(normalised.form).toBe("classes");
        expect(JSON.stringify(input)).toBe(before);
        const result = validateDocument(input);
        expect(result.valid).toBe(result.errors.length === 0);
      }),
      { numRuns: 300 },
    );
  });

  it("translates paths by their longest mapped prefix, on segment boundaries", () => {
    const paths: Array<[string, string]> = [
      ["$.tools[0].endpoint", "$.classes.tool_api.url"],
      ["$.tools[0]", "$.classes.tool_api"],
    ];
    expect(writtenPath(paths, "$.tools[0].endpoint")).toBe("$.classes.tool_api.url");
    expect(writtenPath(paths, "$.tools[0].headers.x")).toBe("$.classes.tool_api.headers.x");
    expect(writtenPath(paths, "$.tools[01]")).toBe("$.tools[01]");
    expect(writtenPath(paths, "$.tools[0]x")).toBe("$.tools[0]x");
  });
});
