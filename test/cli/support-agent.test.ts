/**
 * The support agent example (examples/support-agent.json) through the CLI: offline, and as a
 * chat against the OpenAI-compatible test server with an orders API on loopback (structured
 * classification, a tool the model calls, the conversation remembered, an email form).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChatTurn } from "../../lib/cli/commands/chat.ts";
import { completion, type FakeOpenAi, startFakeOpenAi, toolCallsCompletion } from "../support/fake-openai.ts";
import { type HttpDouble, startHttpDouble } from "../support/http-double.ts";
import { mova } from "./spawn-mova.ts";

const AGENT = "examples/support-agent.json";

let llm: FakeOpenAi;
let orders: HttpDouble;

beforeAll(async () => {
  [llm, orders] = await Promise.all([startFakeOpenAi(), startHttpDouble()]);
  orders.route("GET", "/orders/A1", { body: { id: "A1", status: "shipped", delivery: "2025-03-02" } });
});
afterAll(async () => {
  await Promise.all([llm?.close(), orders?.close()]);
});

describe("the support agent example", { timeout: 90_000 }, () => {
  it("validates without warnings and runs offline, classifying with the schema's smallest instance", async () => {
    const validated = await mova(["validate", AGENT]);
    expect(validated.code, validated.stderr).toBe(0);
    expect(validated.stdout).toContain("valid (0 warnings; sections form)");

    const run = await mova([
      "run",
      AGENT,
      "--protocol",
      "support_agent",
      "--var",
      "user_input=where is my order A1?",
      "--var",
      `orders_api=${orders.url}`,
      "--json",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.status).toBe("completed");
    expect(result.variables.triage).toEqual({ category: "order_status", order_id: "" });
    expect(result.path).toEqual(["classify", "route", "answer_order", "order_done"]);
    expect(result.steps[0]).toMatchObject({ model: "offline", costUsd: 0 });
    expect(run.stderr).toContain("no LLM configured");
  });

  it("chats against the test server: looks the order up through the model's tool call, remembers, and takes an email", async () => {
    llm.queue(
      completion(JSON.stringify({ category: "order_status", order_id: "A1" }), "gpt-4o-mini"),
      toolCallsCompletion(
        [{ id: "call_A1", name: "orders_lookup", arguments: { order_id: "A1" } }],
        "gpt-4o-mini",
      ),
      completion("Your order A1 has shipped and arrives on 2 March.", "gpt-4o-mini"),
      completion(JSON.stringify({ category: "refund", order_id: "A1" }), "gpt-4o-mini"),
    );
    const input = [
      "where is my order A1?",
      "I want a refund for that order",
      "not-an-email",
      "ada@example.com",
    ];
    const run = await mova(["chat", AGENT, "--json", "--var", `orders_api=${orders.url}`], {
      stdin: `${input.join("\n")}\n`,
      env: { LLM_API_KEY: "test-key", LLM_BASE_URL: llm.baseURL, TOOL_ALLOW_HOSTS: "127.0.0.1" },
    });
    expect(run.code, run.stderr).toBe(0);
    const turns = run.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as ChatTurn);
    expect(turns.map((turn) => [turn.status, turn.replies])).toEqual([
      ["completed", ["Your order A1 has shipped and arrives on 2 March."]],
      ["waiting_input", ["I will open a ticket about your refund request. What email can we reach you at?"]],
      [
        "waiting_input",
        ["That does not look like an email address. Please type it again (like name@example.com)."],
      ],
      ["completed", ["Thanks! We will write to ada@example.com about your refund request."]],
    ]);

    const sent = llm.completions();
    expect(sent[0]).toMatchObject({
      model: "gpt-4o-mini",
      temperature: 0,
      response_format: { type: "json_schema" },
    });
    expect((sent[1]?.tools as unknown[] | undefined)?.[0]).toMatchObject({
      function: { name: "orders_lookup" },
    });
    expect(sent[1]).toMatchObject({ temperature: 0.3, max_tokens: 400 });
    expect(orders.requests.map((request) => request.path)).toEqual(["/orders/A1"]);
    expect(sent[2]?.messages.at(-1)).toMatchObject({ role: "tool", tool_call_id: "call_A1" });
    // The second message's classification sees the first exchange (memory.turns 6).
    expect(sent[3]?.messages.map((message) => [message.role, message.content])).toEqual([
      ["system", "You classify customer messages for an online shop's support desk."],
      ["user", "where is my order A1?"],
      ["assistant", "Your order A1 has shipped and arrives on 2 March."],
      ["user", "Classify this message: I want a refund for that order"],
    ]);
  });
});
