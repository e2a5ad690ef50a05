/** Prompt steps and their models: tokens and cost on the step record. */
import { describe, expect, it } from "vitest";
import { createOfflineLlm } from "../../lib/adapters/llm/offline.ts";
import { createOpenAiLlm } from "../../lib/adapters/llm/openai.ts";
import { StepRecordSchema } from "../../lib/core/execution-record.ts";
import { runProtocol } from "../../lib/engine/engine.ts";
import { completion } from "../support/fake-openai.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

const PRICES = { "priced-model": { inputPerMillionUsd: 1_000, outputPerMillionUsd: 2_000 } };
const pricedLlm = () =>
  createOpenAiLlm({
    apiKey: "test-key",
    baseURL: servers.openai.baseURL,
    model: "priced-model",
    maxRetries: 0,
    prices: PRICES,
  });

const twoPrompts = documentOf({
  protocols: [
    {
      name: "p",
      steps: [
        { id: "a", action: "prompt", prompt: "one" },
        { id: "b", action: "prompt", prompt: "two", model: "unpriced-model" },
      ],
    },
  ],
});

describe("tokens and cost on the step record", () => {
  it("records the model, the tokens and the cost from the price table; an unpriced model has no cost", async () => {
    servers.openai.queue(completion("first", "priced-model"), completion("second", "unpriced-model"));
    const result = await runProtocol({
      document: twoPrompts,
      protocol: "p",
      ports: servers.ports({ llm: pricedLlm() }),
    });
    expect(result.status).toBe("completed");
    const [a, b] = result.steps;
    expect(a).toMatchObject({
      model: "priced-model",
      usage: { promptTokens: 7, completionTokens: 3, totalTokens: 10 },
    });
    // 7 × 1000 + 3 × 2000 dollars per million tokens.
    expect(a?.costUsd).toBeCloseTo(0.013, 10);
    expect(b).toMatchObject({ model: "unpriced-model", usage: { totalTokens: 10 } });
    expect(b).not.toHaveProperty("costUsd");
    // The history's schema keeps the cost (and its absence).
    expect(StepRecordSchema.parse(a).costUsd).toBeCloseTo(0.013, 10);
    expect(StepRecordSchema.parse(b).costUsd).toBeUndefined();
  });

  it("records the offline model's zero cost as a known zero", async () => {
    const result = await runProtocol({
      document: twoPrompts,
      protocol: "p",
      ports: servers.ports({ llm: createOfflineLlm() }),
    });
    expect(result.steps.map((step) => [step.model, step.costUsd])).toEqual([
      ["offline", 0],
      ["offline", 0],
    ]);
  });
});

describe("presets", () => {
  const withPresets = (step: Record<string, unknown>) =>
    documentOf({
      presets: {
        analytical: { model: "preset-model", temperature: 0.2, max_tokens: 99, system_message: "Be {tone}." },
        prompted: { system_prompt: "Spelled system_prompt." },
        plain: { system: "Spelled system." },
      },
      protocols: [{ name: "p", steps: [{ id: "ask", action: "prompt", prompt: "hi", ...step } as never] }],
    });

  it("sends the preset's model, temperature, max_tokens and system message", async () => {
    const result = await runProtocol({
      document: withPresets({ preset: "analytical" }),
      protocol: "p",
      variables: { tone: "exact" },
      ports: servers.ports(),
    });
    expect(result.status).toBe("completed");
    const [sent] = servers.openai.completions();
    expect(sent).toMatchObject({ model: "preset-model", temperature: 0.2, max_tokens: 99 });
    expect(sent?.messages).toEqual([
      { role: "system", content: "Be exact." },
      { role: "user", content: "hi" },
    ]);
    expect(result.steps[0]?.model).toBe("preset-model");
  });

  it("lets the step's own fields win over the preset's", async () => {
    await runProtocol({
      document: withPresets({
        preset: "analytical",
        model: "step-model",
        temperature: 1,
        max_tokens: 5,
        system: "Step system.",
      }),
      protocol: "p",
      ports: servers.ports(),
    });
    const [sent] = servers.openai.completions();
    expect(sent).toMatchObject({ model: "step-model", temperature: 1, max_tokens: 5 });
    expect(sent?.messages[0]).toEqual({ role: "system", content: "Step system." });
  });

  it("reads each spelling of the preset's system message", async () => {
    for (const preset of ["prompted", "plain"]) {
      await runProtocol({ document: withPresets({ preset }), protocol: "p", ports: servers.ports() });
    }
    const systems = servers.openai.completions().map((sent) => sent.messages[0]?.content);
    expect(systems).toEqual(["Spelled system_prompt.", "Spelled system."]);
  });

  it("fails the step with unknown_preset, calling no model, when the document was not validated", async () => {
    const result = await runProtocol({
      document: withPresets({ preset: "nowhere" }),
      protocol: "p",
      ports: servers.ports(),
    });
    expect(result.status).toBe("failed");
    expect(result.steps[0]).toMatchObject({
      status: "failed",
      attempts: 0,
      error: { code: "unknown_preset" },
    });
    expect(servers.openai.completions()).toHaveLength(0);
  });
});

describe("model fallback", () => {
  const fallback = (models: string[], retry?: { attempts: number; backoff_ms: number }) =>
    documentOf({
      protocols: [
        {
          name: "p",
          steps: [{ id: "ask", action: "prompt", prompt: "hi", model: models, ...(retry && { retry }) }],
        },
      ],
    });
  const overloaded = { status: 503, body: { error: { message: "overloaded" } } };

  it("tries the next model after the step's retries on a failure worth retrying, and records each", async () => {
    servers.openai.answerModel("primary", overloaded);
    servers.openai.answerModel("secondary", {
      status: 404,
      body: { error: { message: "no such model", code: "model_not_found" } },
    });
    try {
      const result = await runProtocol({
        document: fallback(["primary", "secondary", "tertiary"], { attempts: 2, backoff_ms: 0 }),
        protocol: "p",
        ports: servers.ports(),
      });
      expect(result.status).toBe("completed");
      expect(servers.openai.completions().map((sent) => sent.model)).toEqual([
        "primary",
        "primary",
        "secondary",
        "tertiary",
      ]);
      const record = result.steps[0]!;
      expect(record).toMatchObject({
        status: "succeeded",
        model: "tertiary",
        attempts: 4,
        output: "reply: hi",
      });
      expect(record.modelFailures).toEqual([
        { model: "primary", attempts: 2, error: { code: "llm_server_error", message: expect.any(String) } },
        {
          model: "secondary",
          attempts: 1,
          error: { code: "llm_unknown_model", message: expect.any(String) },
        },
      ]);
      expect(StepRecordSchema.parse(record).modelFailures).toHaveLength(2);
    } finally {
      servers.openai.answerModel("primary", undefined);
      servers.openai.answerModel("secondary", undefined);
    }
  });

  it("does not fall back on a failure that another model would not fix (a bad request)", async () => {
    servers.openai.answerModel("primary", { status: 400, body: { error: { message: "bad messages" } } });
    try {
      const result = await runProtocol({
        document: fallback(["primary", "secondary"]),
        protocol: "p",
        ports: servers.ports(),
      });
      expect(result.status).toBe("failed");
      expect(servers.openai.completions().map((sent) => sent.model)).toEqual(["primary"]);
      expect(result.steps[0]).toMatchObject({ error: { code: "llm_bad_request" } });
    } finally {
      servers.openai.answerModel("primary", undefined);
    }
  });

  it("fails with the last model's failure when every model fails, each named in the record", async () => {
    servers.openai.answerModel("primary", overloaded);
    servers.openai.answerModel("secondary", { status: 429, body: { error: { message: "slow down" } } });
    try {
      const result = await runProtocol({
        document: fallback(["primary", "secondary"]),
        protocol: "p",
        ports: servers.ports(),
      });
      expect(result.status).toBe("failed");
      const record = result.steps[0]!;
      expect(record).toMatchObject({ status: "failed", attempts: 2, error: { code: "llm_rate_limited" } });
      expect(record.modelFailures?.map((failure) => [failure.model, failure.error.code])).toEqual([
        ["primary", "llm_server_error"],
        ["secondary", "llm_rate_limited"],
      ]);
      expect(record.model).toBeUndefined();
    } finally {
      servers.openai.answerModel("primary", undefined);
      servers.openai.answerModel("secondary", undefined);
    }
  });
});

describe("structured output", () => {
  const triageSchema = {
    type: "object",
    properties: {
      category: { type: "string", enum: ["billing", "order", "other"] },
      priority: { type: "integer", minimum: 1, maximum: 5 },
    },
    required: ["category", "priority"],
    additionalProperties: false,
  };
  const triage = (schema: Record<string, unknown> = triageSchema) =>
    documentOf({
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "classify",
              action: "prompt",
              prompt: "Classify: {message}",
              response_schema: schema,
              output: "triage",
            },
            {
              id: "urgent",
              action: "condition",
              conditions: [{ variable: "triage.priority", operator: "greater_than", value: 3 }],
              next_step: "escalate",
              else_step: "calm",
            },
            { id: "escalate", action: "end", response_template: "escalated {triage.category}" },
            { id: "calm", action: "end", response_template: "queued {triage.category} at {triage.priority}" },
          ],
        },
      ],
    });

  it("asks for json_schema (strict when the schema allows it), stores the parsed object, and lets conditions read it", async () => {
    servers.openai.queue(completion(JSON.stringify({ category: "order", priority: 5 })));
    const result = await runProtocol({
      document: triage(),
      protocol: "p",
      variables: { message: "where is my parcel?" },
      ports: servers.ports(),
    });
    expect(result.status).toBe("completed");
    expect(servers.openai.completions()[0]?.response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "classify_answer", schema: triageSchema, strict: true },
    });
    expect(result.variables.triage).toEqual({ category: "order", priority: 5 });
    expect(result.steps[0]).toMatchObject({
      output: { category: "order", priority: 5 },
      outputVariable: "triage",
    });
    expect(result.output).toBe("escalated order");
    // Data for the flow, not a reply shown to the user.
    expect(result.replies).toEqual(["escalated order"]);

    const loose = { type: "object", properties: { category: { type: "string" } } };
    servers.openai.queue(completion(JSON.stringify({ category: "x" })));
    await runProtocol({ document: triage(loose), protocol: "p", ports: servers.ports() });
    expect(servers.openai.completions()[1]?.response_format).toMatchObject({
      json_schema: { strict: false },
    });
  });

  it("sends an invalid answer back once with what is wrong, and takes the repaired one", async () => {
    servers.openai.queue(
      completion(JSON.stringify({ category: "order", priority: 9 })),
      completion(`\`\`\`json\n${JSON.stringify({ category: "billing", priority: 2 })}\n\`\`\``),
    );
    const result = await runProtocol({ document: triage(), protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("completed");
    expect(result.output).toBe("queued billing at 2");
    const [, repair] = servers.openai.completions();
    expect(repair?.messages.slice(-2)).toEqual([
      { role: "assistant", content: JSON.stringify({ category: "order", priority: 9 }) },
      { role: "user", content: expect.stringContaining("/priority must be <= 5") },
    ]);
    expect(result.steps[0]).toMatchObject({ attempts: 2, usage: { promptTokens: 14, totalTokens: 20 } });
  });

  it("fails the step with invalid_llm_output when the repaired answer is still invalid, storing nothing", async () => {
    servers.openai.queue(
      completion("not json at all"),
      completion(JSON.stringify({ category: "nope", priority: 1 })),
    );
    const result = await runProtocol({ document: triage(), protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("failed");
    expect(servers.openai.completions()[1]?.messages.at(-1)?.content).toContain("not valid JSON");
    expect(result.steps[0]).toMatchObject({
      status: "failed",
      attempts: 2,
      error: { code: "invalid_llm_output", message: expect.stringContaining("/category") },
    });
    expect(result.steps[0]).not.toHaveProperty("output");
    expect(result.variables).not.toHaveProperty("triage");
    expect(result.steps[0]?.usage?.totalTokens).toBe(20);
  });

  it("gets the smallest instance of the schema from the offline model", async () => {
    const result = await runProtocol({
      document: triage(),
      protocol: "p",
      ports: servers.ports({ llm: createOfflineLlm() }),
    });
    expect(result.variables.triage).toEqual({ category: "billing", priority: 1 });
    expect(result.output).toBe("queued billing at 1");
  });

  it("fails with invalid_schema, calling no model, when an unvalidated document's schema is unusable", async () => {
    const result = await runProtocol({
      document: triage({ type: "strong" }),
      protocol: "p",
      ports: servers.ports(),
    });
    expect(result.steps[0]).toMatchObject({
      status: "failed",
      attempts: 0,
      error: { code: "invalid_schema" },
    });
    expect(servers.openai.completions()).toHaveLength(0);
  });
});

describe("memory", () => {
  const conversation = [
    { role: "user" as const, content: "my name is Olena" },
    { role: "assistant" as const, content: "Hello Olena" },
    { role: "user" as const, content: "I ordered a lamp" },
    { role: "assistant" as const, content: "Noted" },
  ];
  const remembering = (memory: number | undefined, history?: number) =>
    documentOf({
      protocols: [
        {
          name: "p",
          ...(memory !== undefined && { memory: { turns: memory } }),
          steps: [
            {
              id: "a",
              action: "prompt",
              prompt: "What did I order?",
              system: "Be kind.",
              ...(history !== undefined && { history }),
            },
          ],
        },
      ],
    });

  it("sends the protocol's last memory.turns turns, oldest first, between the system message and the prompt", async () => {
    await runProtocol({ document: remembering(3), protocol: "p", conversation, ports: servers.ports() });
    expect(servers.openai.completions()[0]?.messages).toEqual([
      { role: "system", content: "Be kind." },
      { role: "assistant", content: "Hello Olena" },
      { role: "user", content: "I ordered a lamp" },
      { role: "assistant", content: "Noted" },
      { role: "user", content: "What did I order?" },
    ]);
  });

  it("lets a step's history override the protocol's memory, and sends nothing by default", async () => {
    await runProtocol({ document: remembering(3, 1), protocol: "p", conversation, ports: servers.ports() });
    await runProtocol({
      document: remembering(undefined),
      protocol: "p",
      conversation,
      ports: servers.ports(),
    });
    const [overridden, none] = servers.openai.completions();
    expect(overridden?.messages.map((m) => m.content)).toEqual(["Be kind.", "Noted", "What did I order?"]);
    expect(none?.messages.map((m) => m.content)).toEqual(["Be kind.", "What did I order?"]);
  });
});
