/** Streamed prompt steps: each piece of a reply reaches the run's token sink; the result is unchanged. */
import { describe, expect, it } from "vitest";
import { createOfflineLlm } from "../../lib/adapters/llm/offline.ts";
import { runProtocol } from "../../lib/engine/engine.ts";
import type { MovaDocument } from "../../lib/mova/schema.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

const chat: MovaDocument = documentOf({
  protocols: [
    {
      name: "p",
      steps: [
        { id: "greet", action: "prompt", prompt: "say hello to {name}" },
        {
          id: "classify",
          action: "prompt",
          prompt: "classify",
          response_schema: { type: "object", properties: { kind: { enum: ["a", "b"] } }, required: ["kind"] },
        },
      ],
    },
  ],
});

function collect() {
  const tokens: Array<[string, string]> = [];
  return { tokens, onToken: (stepId: string, delta: string) => tokens.push([stepId, delta]) };
}

describe("streamed prompt steps", () => {
  it("streams the reply with usage included and gives the same result as without streaming", async () => {
    const { tokens, onToken } = collect();
    const streamed = await runProtocol({
      document: chat,
      protocol: "p",
      variables: { name: "Olena" },
      ports: servers.ports(),
      onToken,
    });
    const [greetRequest, classifyRequest] = servers.openai.completions();
    expect(greetRequest).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    // A structured answer is data, not a reply: it is not streamed.
    expect(classifyRequest?.stream).toBeUndefined();
    expect(tokens.map(([, delta]) => delta)).toEqual(["reply:", " say", " hello", " to", " Olena"]);
    expect(new Set(tokens.map(([stepId]) => stepId))).toEqual(new Set(["greet"]));

    const plain = await runProtocol({
      document: chat,
      protocol: "p",
      variables: { name: "Olena" },
      ports: servers.ports(),
    });
    expect(servers.openai.completions()[2]?.stream).toBeUndefined();
    expect(streamed.status).toBe("completed");
    expect(streamed.variables).toEqual(plain.variables);
    expect(streamed.replies).toEqual(plain.replies);
    expect(streamed.steps.map(({ startedAt: _s, durationMs: _d, ...rest }) => rest)).toEqual(
      plain.steps.map(({ startedAt: _s, durationMs: _d, ...rest }) => rest),
    );
    expect(streamed.steps[0]).toMatchObject({
      usage: { promptTokens: 7, completionTokens: 3, totalTokens: 10 },
    });
  });

  it("ignores a token sink that throws", async () => {
    const result = await runProtocol({
      document: chat,
      protocol: "p",
      ports: servers.ports(),
      onToken: () => {
        throw new Error("sink broke");
      },
    });
    expect(result.status).toBe("completed");
  });

  it("fails the step with llm_bad_response when the stream is garbage, storing nothing", async () => {
    servers.openai.queue({
      status: 200,
      headers: { "content-type": "text/event-stream" },
      body: "data: {not json\n\ndata: [DONE]\n\n",
    });
    const result = await runProtocol({
      document: chat,
      protocol: "p",
      ports: servers.ports(),
      onToken: () => {},
    });
    expect(result.status).toBe("failed");
    expect(result.steps[0]).toMatchObject({ status: "failed", error: { code: "llm_bad_response" } });
    expect(result.variables).not.toHaveProperty("prompt_response_greet");

    servers.openai.queue({
      status: 200,
      headers: { "content-type": "text/event-stream" },
      body: "data: [DONE]\n\n",
    });
    const empty = await runProtocol({
      document: chat,
      protocol: "p",
      ports: servers.ports(),
      onToken: () => {},
    });
    expect(empty.steps[0]).toMatchObject({ status: "failed", error: { code: "llm_bad_response" } });
  });

  it("streams the offline model word by word", async () => {
    const { tokens, onToken } = collect();
    const result = await runProtocol({
      document: chat,
      protocol: "p",
      variables: { name: "Olena" },
      ports: servers.ports({ llm: createOfflineLlm() }),
      onToken,
    });
    expect(tokens.map(([, delta]) => delta)).toEqual(["[offline]", " say", " hello", " to", " Olena"]);
    expect(tokens.map(([, delta]) => delta).join("")).toBe(result.variables.prompt_response_greet);
  });
});

describe("streamed tool calls", () => {
  it("puts a tool call streamed in pieces back together, runs it, and streams the final answer", async () => {
    servers.api.route("GET", "/orders/A1", { body: { status: "shipped" } });
    const base = { id: "s", object: "chat.completion.chunk", created: 0, model: "fake-model" };
    const chunk = (delta: Record<string, unknown>) => ({
      ...base,
      choices: [{ index: 0, delta, finish_reason: null }],
    });
    const events = [
      chunk({
        role: "assistant",
        content: null,
        tool_calls: [
          { index: 0, id: "call_9", type: "function", function: { name: "orders_", arguments: "" } },
        ],
      }),
      chunk({ tool_calls: [{ index: 0, function: { name: "lookup", arguments: '{"order_' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: 'id":"A1"}' } }] }),
      { ...base, choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } },
    ];
    servers.openai.queue({
      status: 200,
      headers: { "content-type": "text/event-stream" },
      body: `${events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join("")}data: [DONE]\n\n`,
    });
    const document = documentOf({
      tools: [
        {
          id: "orders.lookup",
          description: "Find an order",
          endpoint: `${servers.api.url}/orders/{order_id}`,
          parameters: { order_id: { type: "string" } },
        },
      ],
      protocols: [
        {
          name: "p",
          steps: [{ id: "answer", action: "prompt", prompt: "where?", tools: ["orders.lookup"] }],
        },
      ],
    });
    const { tokens, onToken } = collect();
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports(), onToken });
    expect(result.status).toBe("completed");
    expect(servers.api.requests.map((request) => request.path)).toEqual(["/orders/A1"]);
    expect(result.steps[0]?.toolCalls?.[0]).toMatchObject({
      callId: "call_9",
      arguments: { order_id: "A1" },
    });
    expect(result.steps[0]?.usage).toEqual({ promptTokens: 12, completionTokens: 5, totalTokens: 17 });
    expect(tokens.map(([, delta]) => delta).join("")).toBe(result.output);
  });
});
