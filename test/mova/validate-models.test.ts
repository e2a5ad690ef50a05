/** Validation of the model fields of documents: presets, model lists, the system message's spellings. */
import { describe, expect, it } from "vitest";
import { validateDocument } from "../../lib/mova/validate.ts";

const codes = (issues: Array<{ code: string; path: string }>) =>
  issues.map((issue) => [issue.code, issue.path]);

function documentWith(step: Record<string, unknown>, presets?: unknown): Record<string, unknown> {
  return {
    version: "2.2",
    ...(presets === undefined ? {} : { presets }),
    protocols: [{ name: "p", steps: [{ id: "ask", action: "prompt", prompt: "hi", ...step }] }],
  };
}

describe("presets", () => {
  it("accepts presets in any of the three spellings of the system message, without warnings", () => {
    const result = validateDocument(
      documentWith(
        { preset: "analytical" },
        {
          analytical: { model: "gpt-4o", temperature: 0.2, max_tokens: 1500, system_message: "Think." },
          creative: { model: ["gpt-4o", "gpt-4o-mini"], system_prompt: "Play.", description: "fun" },
          plain: { system: "Be plain." },
        },
      ),
    );
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.document?.presets.creative?.model).toEqual(["gpt-4o", "gpt-4o-mini"]);
    expect(result.document?.protocols[0]?.steps[0]).toMatchObject({ preset: "analytical" });
  });

  it("reports a step's preset that names no preset as unknown_preset", () => {
    const result = validateDocument(documentWith({ preset: "missing" }, { known: { model: "m" } }));
    expect(result.valid).toBe(false);
    expect(codes(result.errors)).toEqual([["unknown_preset", "$.protocols[0].steps[0].preset"]]);
    expect(result.errors[0]?.message).toContain("the presets are `known`");
    expect(codes(validateDocument(documentWith({ preset: "x" })).errors)).toEqual([
      ["unknown_preset", "$.protocols[0].steps[0].preset"],
    ]);
  });

  it("reports a preset of the wrong shape, warns about its unknown fields, and checks its system placeholders", () => {
    const result = validateDocument(
      documentWith(
        {},
        { hot: { temperature: 5, colour: "red" }, broken: { system_message: "Hi {}" }, list: ["x"] },
      ),
    );
    expect(codes(result.errors)).toEqual(
      expect.arrayContaining([
        ["schema", "$.presets.hot.temperature"],
        ["invalid_placeholder", "$.presets.broken.system_message"],
        ["schema", "$.presets.list"],
      ]),
    );
    expect(codes(result.warnings)).toContainEqual(["unknown_field", "$.presets.hot.colour"]);
    expect(codes(validateDocument({ ...documentWith({}), presets: [] }).errors)).toEqual([
      ["schema", "$.presets"],
    ]);
  });
});

describe("model fields of a prompt step", () => {
  it("accepts a model list and the system message's spellings on the step", () => {
    const result = validateDocument(
      documentWith({ model: ["a", "b"], system_message: "You are {role}.", inputs: undefined }),
    );
    expect(result.errors).toEqual([]);
    expect(result.document?.protocols[0]?.steps[0]).toMatchObject({ model: ["a", "b"] });
  });

  it("refuses an empty model list or a model that is not a name", () => {
    expect(codes(validateDocument(documentWith({ model: [] })).errors)).toEqual([
      ["schema", "$.protocols[0].steps[0].model"],
    ]);
    expect(codes(validateDocument(documentWith({ model: 4 })).errors)).toEqual([
      ["schema", "$.protocols[0].steps[0].model"],
    ]);
  });
});

describe("response_schema", () => {
  it("accepts a usable JSON Schema", () => {
    const schema = { type: "object", properties: { priority: { type: "integer" } }, required: ["priority"] };
    const result = validateDocument(documentWith({ response_schema: schema }));
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.document?.protocols[0]?.steps[0]).toMatchObject({ response_schema: schema });
  });

  it("reports a schema that is not usable as invalid_schema, and one that is not an object as schema", () => {
    for (const schema of [
      { type: "strong" },
      { type: "string", pattern: "(" },
      { $id: "urn:x", type: "string" },
    ]) {
      expect(codes(validateDocument(documentWith({ response_schema: schema })).errors)).toEqual([
        ["invalid_schema", "$.protocols[0].steps[0].response_schema"],
      ]);
    }
    expect(codes(validateDocument(documentWith({ response_schema: "json" })).errors)).toEqual([
      ["schema", "$.protocols[0].steps[0].response_schema"],
    ]);
  });
});

describe("tools of a prompt step", () => {
  const withTools = (stepTools: unknown, tools: unknown[]) => ({
    version: "2.2",
    tools,
    protocols: [
      {
        name: "p",
        steps: [{ id: "ask", action: "prompt", prompt: "hi", tools: stepTools, max_tool_rounds: 3 }],
      },
    ],
  });
  const lookup = {
    id: "lookup",
    description: "Find an order",
    endpoint: "https://api.example.com/orders/{order_id}",
    parameters: { order_id: { type: "string" }, key: "fixed" },
  };

  it("accepts document tools with descriptions and usable argument schemas", () => {
    const result = validateDocument(withTools(["lookup"], [lookup]));
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.document?.protocols[0]?.steps[0]).toMatchObject({ tools: ["lookup"], max_tool_rounds: 3 });
  });

  it("reports a tool that names nothing, warns about one without a description, and refuses unusable schemas", () => {
    const bare = { id: "bare", endpoint: "https://api.example.com/x" };
    const broken = {
      id: "broken",
      description: "d",
      endpoint: "https://api.example.com/y",
      parameters: { type: "object", properties: { n: { type: "nombre" } } },
    };
    const result = validateDocument(
      withTools(["lookup", "nothing", "bare", "broken"], [lookup, bare, broken]),
    );
    expect(codes(result.errors)).toEqual([
      ["unknown_reference", "$.protocols[0].steps[0].tools[1]"],
      ["invalid_schema", "$.tools[2].parameters"],
    ]);
    expect(codes(result.warnings)).toEqual([
      ["tool_without_description", "$.protocols[0].steps[0].tools[2]"],
    ]);
  });
});

describe("input validate", () => {
  const formWith = (validate: unknown) => ({
    version: "2.2",
    protocols: [
      {
        name: "p",
        steps: [
          { id: "ask", action: "input", prompt: "Email?", variable: "email", validate },
          { id: "end", action: "end" },
        ],
      },
    ],
  });

  it("accepts a form's rules without warnings", () => {
    const result = validateDocument(
      formWith({ type: "email", max_attempts: 2, on_exhausted: "end", message: "Try again", pattern: "@" }),
    );
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it("reports an on_exhausted naming no step, a bad pattern and an unknown type", () => {
    expect(codes(validateDocument(formWith({ on_exhausted: "nowhere" })).errors)).toEqual([
      ["unknown_reference", "$.protocols[0].steps[0].validate.on_exhausted"],
    ]);
    expect(codes(validateDocument(formWith({ pattern: "(" })).errors)).toEqual([
      ["invalid_operator", "$.protocols[0].steps[0].validate.pattern"],
    ]);
    expect(codes(validateDocument(formWith({ type: "colour" })).errors)).toEqual([
      ["schema", "$.protocols[0].steps[0].validate.type"],
    ]);
  });
});
