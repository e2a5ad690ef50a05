import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DocumentParseError, parseSource } from "../../lib/mova/parse.ts";
import {
  InvalidDocumentError,
  MAX_DOCUMENT_DEPTH,
  type ValidationIssue,
  endpointProblem,
  loadDocument,
  validateDocument,
} from "../../lib/mova/validate.ts";

const fixture = (name: string) => readFileSync(new URL(`../fixtures/mova/${name}`, import.meta.url), "utf8");
const codes = (issues: ValidationIssue[]) => issues.map((issue) => [issue.code, issue.path]);

/** A small valid document to break in one place per test. */
// biome-ignore lint/suspicious/noExplicitAny: tests break documents in arbitrary places
function base(): Record<string, any> {
  return {
    version: "2.2",
    intents: [{ name: "weather", patterns: ["weather"], protocol: "weather" }],
    protocols: [
      {
        name: "weather",
        steps: [
          { id: "ask", action: "input", prompt: "City?", variable: "city" },
          { id: "call", action: "tool_api", tool_api_id: "weather_api" },
          { id: "say", action: "prompt", prompt: "Weather in {city}: {call_result.temp}" },
          { id: "end", action: "end" },
        ],
      },
    ],
    tools: [{ id: "weather_api", endpoint: "https://api.example.com/weather", parameters: { q: "{city}" } }],
  };
}

describe("validateDocument on the fixtures", () => {
  it("loads an original MOVA 2.0 document with only warnings", () => {
    const result = validateDocument(parseSource(fixture("original-2.0.json")));
    expect(result.errors).toEqual([]);
    expect(result.valid).toBe(true);
    expect(codes(result.warnings)).toEqual([
      ["unresolvable_placeholder", "$.protocols[0].steps[3].prompt"],
      ["unresolvable_placeholder", "$.tools[0].parameters.key"],
      ["unresolvable_placeholder", "$.tools[0].parameters.q"],
    ]);
    expect(result.warnings[1]?.message).toContain("{secrets.API_KEY}");
    const document = result.document!;
    expect(document.version).toBe("2.0");
    expect(document.tools[1]?.authentication).toEqual({ type: "none" });
    expect(document.intents[0]?.patterns).toContain("привіт");
    expect(document.protocols[0]?.max_steps).toBe(200);
  });

  it("loads an original MOVA 2.2 document with presets and tool-calling prompts", () => {
    const result = validateDocument(parseSource(fixture("original-2.2-presets.json")));
    expect(result.valid).toBe(true);
    expect(result.errors).toEqual([]);
    expect(result.warnings.every((w) => w.code === "unknown_field")).toBe(true);
    expect(result.warnings.map((w) => w.path)).toEqual(["$.description"]);
    expect(result.document?.presets.creative).toMatchObject({ model: "openai/gpt-4o", temperature: 0.9 });
    expect(result.document!.protocols[0]!.steps[1]).toMatchObject({ preset: "assistant" });
    expect(result.document!.protocols[0]!.steps[1]).toMatchObject({
      tools: ["calendar.create_event"],
      continue_after_tools: true,
    });
  });

  it("loads a YAML document and normalises it", () => {
    const { document, warnings } = loadDocument(fixture("support-form.yaml"));
    expect(warnings).toEqual([]);
    expect(document.version).toBe("2.2");
    expect(document.tools[0]?.method).toBe("GET");
    expect(document.tools[1]?.method).toBe("GET");
    expect(document.intents[0]?.priority).toBe(1);
    expect(document.intents[0]?.intent_type).toBe("custom");
    expect(document.profiles).toEqual([]);
  });

  const broken: Record<string, Array<[string, string]>> = {
    "schema.json": [
      ["schema", "$.intents[0].patterns"],
      ["schema", "$.protocols[0].steps[0].prompt"],
      ["schema", "$.protocols[0].steps[1].action"],
    ],
    "unsupported-version.json": [["unsupported_version", "$.version"]],
    "duplicate-id.json": [
      ["duplicate_id", "$.protocols[0].steps[1].id"],
      ["duplicate_id", "$.protocols[1].name"],
      ["duplicate_id", "$.tools[1].id"],
    ],
    "unknown-reference.json": [
      ["unknown_reference", "$.protocols[0].start"],
      ["unknown_reference", "$.protocols[0].steps[0].next_step"],
      ["unknown_reference", "$.protocols[0].steps[0].instructions[0]"],
      ["unknown_reference", "$.protocols[0].steps[1].tool_api_id"],
      ["unknown_reference", "$.protocols[0].steps[2].steps[1]"],
      ["unknown_reference", "$.intents[0].protocol"],
    ],
    "invalid-operator.json": [
      ["invalid_operator", "$.protocols[0].steps[0].conditions[0].operator"],
      ["invalid_operator", "$.protocols[0].steps[1].conditions[0].value"],
      ["invalid_operator", "$.protocols[0].steps[2].conditions[0].value"],
    ],
    "invalid-placeholder.json": [
      ["invalid_placeholder", "$.protocols[0].steps[0].prompt"],
      ["invalid_placeholder", "$.protocols[0].steps[0].prompt"],
      ["invalid_placeholder", "$.tools[0].endpoint"],
      ["invalid_placeholder", '$.tools[0].headers["X-A"]'],
      ["invalid_placeholder", "$.tools[0].parameters.deep[0].q"],
    ],
    "invalid-method.json": [["invalid_method", "$.tools[0].method"]],
    "invalid-endpoint.json": [
      ["invalid_endpoint", "$.tools[0].endpoint"],
      ["invalid_endpoint", "$.tools[1].endpoint"],
    ],
    "no-exit.json": [["no_exit", "$.protocols[0]"]],
  };
  for (const [name, expected] of Object.entries(broken)) {
    it(`reports exactly the errors of broken/${name}`, () => {
      const result = validateDocument(parseSource(fixture(`broken/${name}`)));
      expect(result.valid).toBe(false);
      expect(result.document).toBeUndefined();
      expect(codes(result.errors)).toEqual(expected);
      for (const issue of result.errors) expect(issue.message.length).toBeGreaterThan(10);
    });
  }
});

describe("validateDocument messages", () => {
  it("names the step, the protocol and the missing target", () => {
    const doc = base();
    doc.protocols[0].steps[0].next_step = "nope";
    expect(validateDocument(doc).errors).toEqual([
      {
        code: "unknown_reference",
        path: "$.protocols[0].steps[0].next_step",
        message: "step `ask` in protocol `weather`: next_step `nope` names no step",
      },
    ]);
  });

  it("lists the actions for an unknown action", () => {
    const doc = base();
    doc.protocols[0].steps[2].action = "ask_llm";
    const [issue] = validateDocument(doc).errors;
    expect(issue).toMatchObject({ code: "schema", path: "$.protocols[0].steps[2].action" });
    expect(issue!.message).toContain("unknown action `ask_llm`");
    expect(issue!.message).toContain("prompt, input, tool_api, condition, parallel, end");
  });

  it("says which field is missing and which has the wrong type", () => {
    const doc = base();
    delete doc.tools[0].endpoint;
    doc.protocols[0].steps[2].temperature = "hot";
    const errors = validateDocument(doc).errors;
    expect(errors).toContainEqual({
      code: "schema",
      path: "$.tools[0].endpoint",
      message: "tool `weather_api`: `endpoint` is required",
    });
    expect(errors.find((e) => e.path === "$.protocols[0].steps[2].temperature")?.message).toMatch(
      /^step `say` in protocol `weather`: `temperature`: .*number/,
    );
  });
});

describe("validateDocument versions", () => {
  const versionErrors = (version: unknown) => {
    const doc = base();
    if (version === undefined) delete doc.version;
    else doc.version = version;
    return codes(validateDocument(doc).errors);
  };
  it("accepts any 2.x, as text or number", () => {
    for (const version of ["2.0", "2.1", "2.2", "2.9", "2", 2, 2.2])
      expect(versionErrors(version)).toEqual([]);
    const doc = base();
    doc.version = 2;
    expect(validateDocument(doc).document?.version).toBe("2.0");
  });
  it("refuses a missing version and another major", () => {
    expect(versionErrors(undefined)).toEqual([["unsupported_version", "$.version"]]);
    for (const version of ["3.0", "1.9", 1, 3.1, "abc", ""]) {
      expect(versionErrors(version)).toEqual([["unsupported_version", "$.version"]]);
    }
  });
  it("reports a version of the wrong type as a schema error", () => {
    expect(versionErrors(true)).toEqual([["schema", "$.version"]]);
  });
});

describe("validateDocument shapes", () => {
  it("refuses what is not an object", () => {
    for (const input of [null, undefined, [], "x", 42, true]) {
      const result = validateDocument(input);
      expect(result.valid).toBe(false);
      expect(codes(result.errors)).toEqual([["schema", "$"]]);
    }
  });

  it("treats absent sections as empty", () => {
    const result = validateDocument({ version: "2.2" });
    expect(result.valid).toBe(true);
    expect(result.document).toEqual({
      version: "2.2",
      intents: [],
      protocols: [],
      tools: [],
      instructions: [],
      profiles: [],
      contracts: [],
      evaluators: [],
      presets: {},
    });
  });

  it("reports errors in several sections at once", () => {
    const doc = base();
    doc.tools[0].method = 42;
    doc.tools.push({ id: "other", endpoint: "https://x.example.com", method: "TRACE" });
    doc.protocols[0].steps[1].tool_api_id = "missing";
    doc.intents[0].priority = "high";
    doc.instructions = "not a list";
    expect(codes(validateDocument(doc).errors)).toEqual([
      ["schema", "$.instructions"],
      ["schema", "$.intents[0].priority"],
      ["schema", "$.tools[0].method"],
      ["invalid_method", "$.tools[1].method"],
      ["unknown_reference", "$.protocols[0].steps[1].tool_api_id"],
    ]);
  });

  it("checks the steps of a protocol whose own fields are wrong", () => {
    const doc = base();
    doc.protocols[0].max_steps = -1;
    doc.protocols[0].steps[2].next_step = "ghost";
    expect(codes(validateDocument(doc).errors)).toEqual([
      ["schema", "$.protocols[0].max_steps"],
      ["unknown_reference", "$.protocols[0].steps[2].next_step"],
    ]);
  });

  it("refuses a protocol without steps", () => {
    const doc = base();
    doc.protocols.push({ name: "empty", steps: [] }, { name: "none" });
    expect(codes(validateDocument(doc).errors)).toEqual([
      ["schema", "$.protocols[1].steps"],
      ["schema", "$.protocols[2].steps"],
    ]);
  });

  it("accepts any case of a method and stores it in upper case", () => {
    const doc = base();
    doc.tools[0].method = "post";
    const result = validateDocument(doc);
    expect(result.errors).toEqual([]);
    expect(result.document?.tools[0]?.method).toBe("POST");
  });

  it("refuses duplicate intents, instructions and profiles", () => {
    const doc = base();
    doc.intents.push({ name: "weather", patterns: ["rain"] });
    doc.instructions = [
      { id: "i", title: "a", content: "b" },
      { id: "i", title: "c", content: "d" },
    ];
    doc.profiles = [{ user_id: "u" }, { user_id: "v" }, { user_id: "u" }];
    expect(codes(validateDocument(doc).errors)).toEqual([
      ["duplicate_id", "$.intents[1].name"],
      ["duplicate_id", "$.instructions[1].id"],
      ["duplicate_id", "$.profiles[2].user_id"],
    ]);
  });
});

describe("validateDocument references and parallel steps", () => {
  it("accepts parallel branches naming prompt and tool_api steps", () => {
    const doc = base();
    doc.protocols[0].steps.splice(1, 0, {
      id: "both",
      action: "parallel",
      steps: ["call", "say"],
      next_step: "end",
    });
    const result = validateDocument(doc);
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it("refuses a parallel branch of another kind as a schema error", () => {
    const doc = base();
    doc.protocols[0].steps.splice(1, 0, { id: "both", action: "parallel", steps: ["call", "ask", "call"] });
    const errors = validateDocument(doc).errors;
    expect(codes(errors)).toEqual([
      ["schema", "$.protocols[0].steps[1].steps[1]"],
      ["schema", "$.protocols[0].steps[1].steps[2]"],
    ]);
    expect(errors[0]!.message).toContain("`input` step");
  });

  it("checks else_step and start", () => {
    const doc = base();
    doc.protocols[0].start = "say";
    doc.protocols[0].steps.splice(3, 0, {
      id: "hot",
      action: "condition",
      conditions: [{ variable: "call_result.temp", operator: "greater_than", value: 25 }],
      else_step: "cold",
    });
    expect(validateDocument(doc).errors).toEqual([
      {
        code: "unknown_reference",
        path: "$.protocols[0].steps[3].else_step",
        message: "step `hot` in protocol `weather`: else_step `cold` names no step",
      },
    ]);
  });
});

describe("validateDocument flow graph", () => {
  const protocolDoc = (steps: unknown[], extra: Record<string, unknown> = {}) => ({
    version: "2.2",
    protocols: [{ name: "p", inputs: ["x"], steps, ...extra }],
  });

  it("counts falling off the end of the list as an exit", () => {
    const result = validateDocument(protocolDoc([{ id: "a", action: "prompt", prompt: "hi" }]));
    expect(result.valid).toBe(true);
  });

  it("counts a condition without else_step as an exit, and warns", () => {
    const result = validateDocument(
      protocolDoc([
        { id: "ask", action: "input", prompt: "?", variable: "answer" },
        {
          id: "again",
          action: "condition",
          conditions: [{ variable: "answer", operator: "equals", value: "no" }],
          next_step: "ask",
        },
      ]),
    );
    expect(result.errors).toEqual([]);
    expect(codes(result.warnings)).toEqual([["missing_else", "$.protocols[0].steps[1]"]]);
  });

  it("finds the exit of a re-ask loop through else_step", () => {
    const result = validateDocument(
      protocolDoc([
        { id: "ask", action: "input", prompt: "?", variable: "answer" },
        {
          id: "check",
          action: "condition",
          conditions: [{ variable: "answer", operator: "matches", value: "^\\d+$" }],
          next_step: "done",
          else_step: "ask",
        },
        { id: "done", action: "end" },
      ]),
    );
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it("reports a loop with no way out, and the steps it never reaches", () => {
    const result = validateDocument(
      protocolDoc(
        [
          { id: "a", action: "prompt", prompt: "1", next_step: "b" },
          { id: "b", action: "prompt", prompt: "2", next_step: "a" },
          { id: "end", action: "end" },
        ],
        {},
      ),
    );
    expect(codes(result.errors)).toEqual([["no_exit", "$.protocols[0]"]]);
    expect(codes(result.warnings)).toEqual([["unreachable_step", "$.protocols[0].steps[2]"]]);
  });

  it("reports a condition whose both branches loop back", () => {
    const result = validateDocument(
      protocolDoc([
        { id: "a", action: "prompt", prompt: "1" },
        {
          id: "c",
          action: "condition",
          conditions: [{ variable: "x", operator: "exists" }],
          next_step: "a",
          else_step: "a",
        },
        { id: "end", action: "end" },
      ]),
    );
    expect(codes(result.errors)).toEqual([["no_exit", "$.protocols[0]"]]);
  });

  it("lets a guarded end step be skipped but still counts it as an exit", () => {
    const guarded = validateDocument(
      protocolDoc([
        { id: "a", action: "prompt", prompt: "1" },
        { id: "stop", action: "end", conditions: [{ variable: "x", operator: "exists" }], next_step: "a" },
      ]),
    );
    expect(guarded.errors).toEqual([]);
  });

  it("starts from `start` and warns about the steps before it", () => {
    const result = validateDocument(
      protocolDoc(
        [
          { id: "intro", action: "prompt", prompt: "hi" },
          { id: "main", action: "prompt", prompt: "main" },
        ],
        { start: "main" },
      ),
    );
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([
      {
        code: "unreachable_step",
        path: "$.protocols[0].steps[0]",
        message: "protocol `p`: step `intro` is never reached from the start step `main`",
      },
    ]);
  });

  it("does not add no_exit on top of a dangling next_step", () => {
    const result = validateDocument(
      protocolDoc([{ id: "a", action: "prompt", prompt: "1", next_step: "nowhere" }]),
    );
    expect(codes(result.errors)).toEqual([["unknown_reference", "$.protocols[0].steps[0].next_step"]]);
  });
});

describe("validateDocument placeholders", () => {
  it("accepts built-ins, inputs, input variables and step outputs (default and named)", () => {
    const result = validateDocument({
      version: "2.2",
      protocols: [
        {
          name: "p",
          inputs: ["order", "base_url"],
          steps: [
            {
              id: "ask",
              action: "input",
              prompt: "{user_input} {session.id} {profile.name} {intent} {now}",
              variable: "reply",
            },
            { id: "think", action: "prompt", prompt: "{reply} {order.id} {now}" },
            { id: "fetch", action: "tool_api", tool_api_id: "t" },
            { id: "named", action: "tool_api", tool_api_id: "t", output: "data" },
            {
              id: "last",
              action: "prompt",
              prompt: "{prompt_response_think} {fetch_result.a.0} {data}",
              output: "final",
            },
            { id: "end", action: "end", response_template: "{final}" },
          ],
        },
      ],
      tools: [
        {
          id: "t",
          endpoint: "{base_url}/x/{order.id}",
          headers: { "X-Reply": "{reply}", "X-Key": "{secrets.KEY}" },
        },
      ],
    });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it("warns about placeholders nothing provides, in prompts, templates and conditions", () => {
    const result = validateDocument({
      version: "2.2",
      protocols: [
        {
          name: "p",
          steps: [
            { id: "a", action: "prompt", prompt: "{missing.x}", system: "{also_missing}" },
            {
              id: "c",
              action: "condition",
              conditions: [{ variable: "ghost", operator: "exists" }],
              else_step: "end",
            },
            { id: "end", action: "end", response_template: "{nothing}" },
          ],
        },
      ],
    });
    expect(result.valid).toBe(true);
    expect(codes(result.warnings)).toEqual([
      ["unresolvable_placeholder", "$.protocols[0].steps[0].prompt"],
      ["unresolvable_placeholder", "$.protocols[0].steps[0].system"],
      ["unresolvable_placeholder", "$.protocols[0].steps[1].conditions[0].variable"],
      ["unresolvable_placeholder", "$.protocols[0].steps[2].response_template"],
    ]);
    expect(result.warnings[0]!.message).toContain("`missing`");
  });

  it("checks a tool's placeholders in each protocol that calls it", () => {
    const doc = base();
    doc.protocols.push({
      name: "other",
      steps: [{ id: "call", action: "tool_api", tool_api_id: "weather_api" }],
    });
    doc.tools[0].authentication = { type: "bearer", token: "{token}" };
    const result = validateDocument(doc);
    expect(result.valid).toBe(true);
    expect(codes(result.warnings)).toEqual([
      ["unresolvable_placeholder", "$.tools[0].parameters.q"],
      ["unresolvable_placeholder", "$.tools[0].authentication.token"],
      ["unresolvable_placeholder", "$.tools[0].authentication.token"],
    ]);
    expect(result.warnings[0]!.message).toContain("protocol `other`");
  });

  it("does not mistake escaped braces or JSON examples for placeholders", () => {
    const doc = base();
    doc.protocols[0].steps[2].prompt = 'Reply as {{"city": "..."}} or { "a": 1 } for {city}';
    const result = validateDocument(doc);
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it("checks intent templates against the built-ins", () => {
    const doc = base();
    doc.intents[0].response_template = "Hi {profile.name}, about {city}? {bad..}";
    const result = validateDocument(doc);
    expect(codes(result.errors)).toEqual([["invalid_placeholder", "$.intents[0].response_template"]]);
    expect(codes(result.warnings)).toEqual([["unresolvable_placeholder", "$.intents[0].response_template"]]);
  });
});

describe("validateDocument unknown fields", () => {
  it("warns about fields no schema knows, everywhere", () => {
    const doc = base();
    doc.extra = 1;
    doc.intents[0].synonyms = [];
    doc.protocols[0].owner = "me";
    doc.protocols[0].steps[2].outline = "creative";
    doc.protocols[0].steps[2].else_step = "end";
    doc.protocols[0].steps[2].conditions = [{ variable: "city", operator: "exists", negate: true }];
    doc.protocols[0].steps[1].retry = { attempts: 2, jitter: true };
    doc.tools[0].authentication = { type: "none", scheme: "x" };
    doc.tools[0].rate_limit = 3;
    const result = validateDocument(doc);
    expect(result.valid).toBe(true);
    expect(codes(result.warnings)).toEqual([
      ["unknown_field", "$.extra"],
      ["unknown_field", "$.intents[0].synonyms"],
      ["unknown_field", "$.tools[0].rate_limit"],
      ["unknown_field", "$.tools[0].authentication.scheme"],
      ["unknown_field", "$.protocols[0].owner"],
      ["unknown_field", "$.protocols[0].steps[1].retry.jitter"],
      ["unknown_field", "$.protocols[0].steps[2].outline"],
      ["unknown_field", "$.protocols[0].steps[2].else_step"],
      ["unknown_field", "$.protocols[0].steps[2].conditions[0].negate"],
    ]);
  });
});

describe("validateDocument robustness", () => {
  it("refuses __proto__ keys without touching any prototype", () => {
    const input = JSON.parse(
      '{"version": "2.2", "tools": [{"id": "t", "endpoint": "https://x.example.com", "headers": {"__proto__": {"polluted": "yes"}}}]}',
    );
    const result = validateDocument(input);
    expect(codes(result.errors)).toEqual([["schema", "$.tools[0].headers.__proto__"]]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses a document nested too deeply instead of overflowing the stack", () => {
    let deep: unknown = "leaf";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const result = validateDocument({
      version: "2.2",
      tools: [{ id: "t", endpoint: "https://x.example.com", parameters: { deep } }],
    });
    expect(result.valid).toBe(false);
    expect(result.errors[0]?.code).toBe("schema");
    expect(result.errors[0]?.message).toContain(String(MAX_DOCUMENT_DEPTH));
  });

  it("survives cycles, throwing getters and exotic values", () => {
    const cyclic: Record<string, unknown> = { version: "2.2" };
    cyclic.self = cyclic;
    expect(validateDocument(cyclic).valid).toBe(false);

    const hostile = { version: "2.2" };
    Object.defineProperty(hostile, "protocols", {
      enumerable: true,
      get() {
        throw new Error("boom");
      },
    });
    const result = validateDocument(hostile);
    expect(result.valid).toBe(false);
    expect(result.errors[0]).toMatchObject({ code: "schema", path: "$" });

    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("no keys");
        },
      },
    );
    expect(validateDocument(proxy).valid).toBe(false);
    expect(validateDocument({ version: "2.2", tools: [{ id: 1n, endpoint: Symbol("x") }] }).valid).toBe(
      false,
    );
    expect(validateDocument({ version: "2.2", intents: [() => 1] }).valid).toBe(false);
  });

  it("handles a large document", () => {
    const steps = Array.from({ length: 2_000 }, (_, i) => ({
      id: `s${i}`,
      action: "prompt",
      prompt: `step {prompt_response_s${Math.max(0, i - 1)}}`,
    }));
    const result = validateDocument({ version: "2.2", protocols: [{ name: "big", steps }] });
    expect(result.errors).toEqual([]);
    expect(result.document?.protocols[0]?.steps).toHaveLength(2_000);
  });
});

describe("endpointProblem", () => {
  it("lets a placeholder stand for the base URL or a part", () => {
    expect(endpointProblem("{base_url}/weather")).toBeUndefined();
    expect(endpointProblem("https://{host}/v1/{path}")).toBeUndefined();
    expect(endpointProblem("http://localhost:8080/x?q={q}")).toBeUndefined();
  });
  it("refuses relative, non-http and host-less endpoints", () => {
    expect(endpointProblem("api.example.com/x")).toMatch(/absolute/);
    expect(endpointProblem("/x/{id}")).toMatch(/absolute/);
    expect(endpointProblem("file:///etc/passwd")).toMatch(/http/);
    expect(endpointProblem("https:/x")).toMatch(/absolute/);
  });
});

describe("loadDocument", () => {
  it("returns the document and its warnings", () => {
    const { document, warnings } = loadDocument(fixture("original-2.2-presets.json"), "json");
    expect(document.protocols[0]?.name).toBe("schedule_meeting");
    expect(warnings.length).toBe(1);
  });
  it("throws InvalidDocumentError with the errors and warnings", () => {
    let caught: unknown;
    try {
      loadDocument(fixture("broken/no-exit.json"));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidDocumentError);
    const error = caught as InvalidDocumentError;
    expect(error.code).toBe("invalid_document");
    expect(codes(error.errors)).toEqual([["no_exit", "$.protocols[0]"]]);
    expect(error.message).toContain("$.protocols[0]");
  });
  it("throws DocumentParseError on text that is not JSON or YAML", () => {
    expect(() => loadDocument('{"version": ')).toThrow(DocumentParseError);
  });
});
