import { MovaError } from "../../lib/errors.ts";
import { describe, expect, it } from "vitest";
import { createOfflineLlm } from "../../lib/adapters/llm/offline.ts";
import { runProtocol } from "../../lib/engine/engine.ts";
import type { StepRecord } from "../../lib/core/run.ts";
import { completion } from "../support/fake-openai.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

describe("prompt steps", () => {
  it("renders the prompt, sends system, instructions and model settings, and stores the reply", async () => {
    const document = documentOf({
      instructions: [{ id: "tone", title: "Tone", content: "Answer briefly." }],
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "ask",
              action: "prompt",
              prompt: "Weather in {place.city} at {place.coords.0}",
              system: "You speak {lang}.",
              instructions: ["tone"],
              model: "model-x",
              temperature: 0.3,
              max_tokens: 50,
            },
            { id: "again", action: "prompt", prompt: "Repeat: {prompt_response_ask}", output: "repeated" },
          ],
        },
      ],
    });
    const result = await runProtocol({
      document,
      protocol: "p",
      variables: { place: { city: "Kyiv", coords: [50.45, 30.52] }, lang: "English" },
      ports: servers.ports(),
    });

    expect(result.status).toBe("completed");
    const [first, second] = servers.openai.completions();
    expect(first?.model).toBe("model-x");
    expect(first?.temperature).toBe(0.3);
    expect(first?.max_tokens).toBe(50);
    expect(first?.messages).toEqual([
      { role: "system", content: "You speak English.\n\nAnswer briefly." },
      { role: "user", content: "Weather in Kyiv at 50.45" },
    ]);
    expect(second?.messages).toEqual([{ role: "user", content: "Repeat: reply: Weather in Kyiv at 50.45" }]);
    expect(result.variables.prompt_response_ask).toBe("reply: Weather in Kyiv at 50.45");
    expect(result.variables.repeated).toBe("reply: Repeat: reply: Weather in Kyiv at 50.45");
    expect(result.output).toBe(result.variables.repeated);
    expect(result.replies).toEqual([result.variables.prompt_response_ask, result.variables.repeated]);
    const record = result.steps[0]!;
    expect(record).toMatchObject({
      id: "ask",
      action: "prompt",
      status: "succeeded",
      attempts: 1,
      prompt: "Weather in Kyiv at 50.45",
      model: "model-x",
      outputVariable: "prompt_response_ask",
      usage: { promptTokens: 7, completionTokens: 3, totalTokens: 10 },
    });
    expect(record.offline).toBeUndefined();
    expect(result.offline).toBe(false);
    expect(Number.isNaN(Date.parse(record.startedAt))).toBe(false);
  });

  it("marks the run offline when the offline model answers", async () => {
    const document = documentOf({
      protocols: [{ name: "p", steps: [{ id: "ask", action: "prompt", prompt: "Hello {name}" }] }],
    });
    const result = await runProtocol({
      document,
      protocol: "p",
      variables: { name: "Olena" },
      ports: { llm: createOfflineLlm(), tools: servers.ports().tools },
    });
    expect(result.status).toBe("completed");
    expect(result.offline).toBe(true);
    expect(result.steps[0]?.offline).toBe(true);
    expect(result.output).toBe("[offline] Hello Olena");
  });

  it("fails the run when the LLM rejects the request", async () => {
    servers.openai.queue({
      status: 400,
      body: { error: { message: "bad model", type: "invalid_request_error" } },
    });
    const document = documentOf({
      protocols: [
        {
          name: "p",
          steps: [{ id: "ask", action: "prompt", prompt: "x", retry: { attempts: 3, backoff_ms: 1 } }],
        },
      ],
    });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("failed");
    expect(result.steps[0]).toMatchObject({
      status: "failed",
      attempts: 1,
      error: { code: "llm_bad_request" },
    });
    expect(result.error?.code).toBe("llm_bad_request");
    expect(servers.openai.completions()).toHaveLength(1);
  });
});

describe("flow", () => {
  const flowDocument = documentOf({
    protocols: [
      {
        name: "flow",
        start: "second",
        steps: [
          { id: "first", action: "end", response_template: "never" },
          { id: "second", action: "prompt", prompt: "two", next_step: "fourth" },
          { id: "third", action: "end", response_template: "skipped over" },
          { id: "fourth", action: "prompt", prompt: "four" },
          { id: "fifth", action: "prompt", prompt: "five" },
        ],
      },
    ],
  });

  it("starts at start, follows next_step, else the list, and completes when the list runs out", async () => {
    const result = await runProtocol({ document: flowDocument, protocol: "flow", ports: servers.ports() });
    expect(result.status).toBe("completed");
    expect(result.path).toEqual(["second", "fourth", "fifth"]);
    expect(result.output).toBe("reply: five");
    expect(result.error).toBeUndefined();
  });

  it("starts at the first step when start is absent and ends on an end step with its template", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "p",
          steps: [
            { id: "a", action: "prompt", prompt: "hi" },
            { id: "done", action: "end", response_template: "Said {prompt_response_a}; {{literal}}" },
            { id: "after", action: "prompt", prompt: "never" },
          ],
        },
      ],
    });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("completed");
    expect(result.path).toEqual(["a", "done"]);
    expect(result.output).toBe("Said reply: hi; {literal}");
    expect(result.replies).toEqual(["reply: hi", "Said reply: hi; {literal}"]);
    expect(result.steps.at(-1)).toMatchObject({ id: "done", action: "end", status: "succeeded" });
    expect(servers.openai.completions()).toHaveLength(1);
  });

  it("takes then to next_step and else to else_step, and ends completed on a false condition without else", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "check",
              action: "condition",
              conditions: [
                { variable: "order.total", operator: "greater_than", value: 100 },
                { variable: "order.country", operator: "in", value: ["UA", "PL"] },
              ],
              next_step: "big",
              else_step: "small",
            },
            { id: "unused", action: "end", response_template: "unused" },
            { id: "big", action: "end", response_template: "big order {order.total}" },
            {
              id: "small",
              action: "condition",
              conditions: [{ variable: "order.total", operator: "exists" }],
            },
            { id: "small_end", action: "end", response_template: "small order" },
          ],
        },
      ],
    });
    const run = (order: unknown) =>
      runProtocol({ document, protocol: "p", variables: { order }, ports: servers.ports() });

    const big = await run({ total: "250", country: "UA" });
    expect(big.path).toEqual(["check", "big"]);
    expect(big.output).toBe("big order 250");
    expect(big.steps[0]?.branch).toBe("then");

    const small = await run({ total: 20, country: "UA" });
    expect(small.path).toEqual(["check", "small", "small_end"]);
    expect(small.steps.map((s) => s.branch)).toEqual(["else", "then", undefined]);

    const missing = await run({ country: "UA" });
    expect(missing.status).toBe("completed");
    expect(missing.path).toEqual(["check", "small"]);
    expect(missing.steps.map((s) => s.branch)).toEqual(["else", "else"]);
    expect(missing.output).toBeUndefined();
  });

  it("skips a step whose guard does not hold, with attempts 0, and continues", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "vip_greeting",
              action: "prompt",
              prompt: "VIP",
              conditions: [{ variable: "profile.preferences.tier", operator: "equals", value: "vip" }],
            },
            {
              id: "goodbye",
              action: "end",
              response_template: "bye {profile.name}",
              conditions: [{ variable: "intent", operator: "equals", value: "farewell" }],
            },
            { id: "fallback", action: "end", response_template: "fallback" },
          ],
        },
      ],
    });
    const profile = { user_id: "u1", name: "Ira", preferences: { tier: "basic" } };
    const result = await runProtocol({
      document,
      protocol: "p",
      profile,
      intent: "greeting",
      ports: servers.ports(),
    });
    expect(result.status).toBe("completed");
    expect(result.path).toEqual(["vip_greeting", "goodbye", "fallback"]);
    expect(result.steps.map((s) => [s.id, s.status, s.attempts])).toEqual([
      ["vip_greeting", "skipped", 0],
      ["goodbye", "skipped", 0],
      ["fallback", "succeeded", 1],
    ]);
    expect(servers.openai.completions()).toHaveLength(0);

    const vip = await runProtocol({
      document,
      protocol: "p",
      profile: { ...profile, preferences: { tier: "vip" } },
      intent: "farewell",
      ports: servers.ports(),
    });
    expect(vip.path).toEqual(["vip_greeting", "goodbye"]);
    expect(vip.output).toBe("bye Ira");
  });

  it("loops until a condition holds (polling a tool)", async () => {
    servers.api.queue("GET", "/job", { body: { state: "pending" } }, { body: { state: "pending" } });
    servers.api.route("GET", "/job", { body: { state: "done", result: 42 } });
    const document = documentOf({
      tools: [{ id: "job", endpoint: `${servers.api.url}/job`, method: "GET" }],
      protocols: [
        {
          name: "poll",
          steps: [
            { id: "check", action: "tool_api", tool_api_id: "job", output: "job" },
            {
              id: "done",
              action: "condition",
              conditions: [{ variable: "job.state", operator: "equals", value: "done" }],
              else_step: "check",
            },
            { id: "finish", action: "end", response_template: "result {job.result}" },
          ],
        },
      ],
    });
    const result = await runProtocol({ document, protocol: "poll", ports: servers.ports() });
    expect(result.status).toBe("completed");
    expect(result.output).toBe("result 42");
    expect(result.path).toEqual(["check", "done", "check", "done", "check", "done", "finish"]);
    expect(servers.api.requests).toHaveLength(3);
  });

  it("stops an endless loop after max_steps (protocol default, and the run option overriding it)", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "spin",
          max_steps: 7,
          steps: [
            {
              id: "a",
              action: "condition",
              conditions: [{ variable: "x", operator: "not_exists" }],
              next_step: "b",
            },
            {
              id: "b",
              action: "condition",
              conditions: [{ variable: "x", operator: "not_exists" }],
              next_step: "a",
            },
          ],
        },
      ],
    });
    const byProtocol = await runProtocol({ document, protocol: "spin", ports: servers.ports() });
    expect(byProtocol.status).toBe("failed");
    expect(byProtocol.error?.code).toBe("max_steps");
    expect(byProtocol.path).toHaveLength(7);

    const byOption = await runProtocol({ document, protocol: "spin", maxSteps: 3, ports: servers.ports() });
    expect(byOption.error?.code).toBe("max_steps");
    expect(byOption.path).toEqual(["a", "b", "a"]);

    const defaultDocument = documentOf({ protocols: [{ ...document.protocols[0]!, max_steps: undefined }] });
    const byDefault = await runProtocol({
      document: defaultDocument,
      protocol: "spin",
      ports: servers.ports(),
    });
    expect(byDefault.error?.code).toBe("max_steps");
    expect(byDefault.path).toHaveLength(200);
  });

  it("throws unknown_protocol for a protocol the document lacks", async () => {
    const document = documentOf({ protocols: [{ name: "p", steps: [{ id: "e", action: "end" }] }] });
    const attempt = runProtocol({ document, protocol: "nope", ports: servers.ports() });
    await expect(attempt).rejects.toBeInstanceOf(MovaError);
    await expect(attempt).rejects.toMatchObject({ code: "unknown_protocol" });
  });

  it("fails the run on a next_step naming nothing or a tool that does not exist", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "dangling",
          steps: [
            {
              id: "a",
              action: "end",
              next_step: "ghost",
              conditions: [{ variable: "x", operator: "exists" }],
            },
          ],
        },
        { name: "no_tool", steps: [{ id: "call", action: "tool_api", tool_api_id: "ghost_tool" }] },
      ],
    });
    const dangling = await runProtocol({ document, protocol: "dangling", ports: servers.ports() });
    expect(dangling).toMatchObject({ status: "failed", error: { code: "unknown_reference" } });
    const noTool = await runProtocol({ document, protocol: "no_tool", ports: servers.ports() });
    expect(noTool).toMatchObject({ status: "failed", error: { code: "unknown_reference" } });
    expect(noTool.steps[0]).toMatchObject({ status: "failed", attempts: 0, toolId: "ghost_tool" });
  });

  it("reports each step as it finishes, before the run returns", async () => {
    servers.openai.setDelay(30);
    try {
      const document = documentOf({
        protocols: [
          {
            name: "p",
            steps: [
              { id: "one", action: "prompt", prompt: "1" },
              { id: "two", action: "prompt", prompt: "2" },
              { id: "end", action: "end", response_template: "ok" },
            ],
          },
        ],
      });
      const seen: Array<{ id: string; requestsSoFar: number }> = [];
      const result = await runProtocol({
        document,
        protocol: "p",
        ports: servers.ports(),
        onStep: (record: StepRecord) =>
          seen.push({ id: record.id, requestsSoFar: servers.openai.completions().length }),
      });
      expect(seen).toEqual([
        { id: "one", requestsSoFar: 1 },
        { id: "two", requestsSoFar: 2 },
        { id: "end", requestsSoFar: 2 },
      ]);
      expect(result.steps.map((s) => s.id)).toEqual(["one", "two", "end"]);
    } finally {
      servers.openai.setDelay(0);
    }
  });

  it("ends failed with code cancelled when the caller's signal aborts, cutting the call short", async () => {
    servers.api.route("GET", "/slow", { body: { ok: true }, delayMs: 2_000 });
    const document = documentOf({
      tools: [{ id: "slow", endpoint: `${servers.api.url}/slow` }],
      protocols: [{ name: "p", steps: [{ id: "call", action: "tool_api", tool_api_id: "slow" }] }],
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const result = await runProtocol({
      document,
      protocol: "p",
      ports: servers.ports(),
      signal: controller.signal,
    });
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("cancelled");
    expect(result.steps[0]).toMatchObject({ status: "failed", error: { code: "cancelled" } });
  });

  it("keeps concurrent runs apart", async () => {
    servers.openai.answerWith((request) => `echo ${request.messages.at(-1)?.content}`);
    try {
      const document = documentOf({
        protocols: [
          {
            name: "p",
            steps: [
              { id: "a", action: "prompt", prompt: "{who}", output: "said" },
              { id: "end", action: "end", response_template: "{who}: {said}" },
            ],
          },
        ],
      });
      const names = Array.from({ length: 8 }, (_, i) => `user${i}`);
      const variables = names.map((who) => ({ who }));
      const results = await Promise.all(
        variables.map((vars) =>
          runProtocol({ document, protocol: "p", variables: vars, ports: servers.ports() }),
        ),
      );
      expect(results.map((r) => r.output)).toEqual(names.map((who) => `${who}: echo ${who}`));
      expect(variables.map((v) => Object.keys(v))).toEqual(names.map(() => ["who"]));
    } finally {
      servers.openai.answerWith(
        (request) => `reply: ${request.messages.filter((m) => m.role === "user").at(-1)?.content}`,
      );
    }
  });
});

describe("placeholders and variables", () => {
  it("resolves dotted paths, session, profile, intent and now; keeps escapes; lists what is unresolved", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "end",
              action: "end",
              response_template:
                "{items.1.name} {session.cart.count} {profile.language} {intent} {{not_a_placeholder}} {missing.path} {HOME} {now} {user_input}",
            },
          ],
        },
      ],
    });
    const result = await runProtocol({
      document,
      protocol: "p",
      variables: { items: [{ name: "a" }, { name: "b" }], user_input: "hi" },
      session: { cart: { count: 3 } },
      profile: { user_id: "u", language: "uk" },
      intent: "order",
      ports: servers.ports(),
    });
    const output = result.output as string;
    expect(output).toMatch(/^b 3 uk order \{not_a_placeholder\} \{missing\.path\} \{HOME\} (\S+) hi$/);
    const now = output.split(" ").at(-2)!;
    expect(Math.abs(Date.parse(now) - Date.now())).toBeLessThan(5_000);
    expect(result.unresolved).toEqual(["missing.path", "HOME"]);
  });

  it("records the completion reply as prompted through the real SDK", async () => {
    servers.openai.queue(completion("scripted answer", "provider-model"));
    const document = documentOf({
      protocols: [{ name: "p", steps: [{ id: "a", action: "prompt", prompt: "q" }] }],
    });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.output).toBe("scripted answer");
    expect(result.steps[0]?.model).toBe("provider-model");
  });
});
