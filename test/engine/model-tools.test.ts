/** Tools the model calls from a prompt step: function calling through the one tool path. */
import { describe, expect, it } from "vitest";
import { StepRecordSchema } from "../../lib/core/execution-record.ts";
import { runProtocol } from "../../lib/engine/engine.ts";
import type { MovaDocument } from "../../lib/mova/schema.ts";
import { completion, toolCallsCompletion } from "../support/fake-openai.ts";
import { documentOf, secretsOf, useServers } from "./support.ts";

let inFlight = 0;
let maxInFlight = 0;
const servers = useServers((started) => {
  for (const id of ["A1", "B2"]) {
    started.api.route("GET", `/orders/${id}`, async (request) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 50));
      inFlight -= 1;
      return { body: { id, status: id === "A1" ? "shipped" : "packing", verbose: request.query.verbose } };
    });
  }
  started.api.route("GET", "/orders/missing", { status: 404, body: { error: "no such order" } });
  started.api.route("POST", "/tickets", (request) => ({ status: 201, body: { created: request.json } }));
});

function agent(step: Record<string, unknown> = {}): MovaDocument {
  return documentOf({
    tools: [
      {
        id: "orders.lookup",
        description: "Look up an order by its id",
        endpoint: `${servers.api.url}/orders/{order_id}`,
        method: "GET",
        headers: { "X-Api-Key": "{secrets.ORDERS_KEY}" },
        parameters: {
          order_id: { type: "string", description: "The order id", pattern: "^[A-Za-z0-9]+$" },
          verbose: "yes",
        },
      },
      {
        id: "ticket",
        description: "Open a support ticket",
        endpoint: `${servers.api.url}/tickets`,
        method: "POST",
        parameters: {
          type: "object",
          properties: { summary: { type: "string" }, urgent: { type: "boolean" } },
          required: ["summary"],
        },
      },
    ],
    protocols: [
      {
        name: "p",
        steps: [
          {
            id: "answer",
            action: "prompt",
            prompt: "Help with: {question}",
            tools: ["orders.lookup", "ticket"],
            ...step,
          },
        ],
      },
    ],
  });
}

const run = (document: MovaDocument, executionId?: string) =>
  runProtocol({
    document,
    protocol: "p",
    variables: { question: "where is A1?" },
    ports: servers.ports({ secrets: secretsOf({ ORDERS_KEY: "orders-secret-key" }) }),
    ...(executionId ? { executionId } : {}),
  });

describe("tools the model calls", () => {
  it("offers the tools, runs the call through the tool path, sends the result back and stores it", async () => {
    servers.openai.queue(
      toolCallsCompletion([{ id: "call_1", name: "orders_lookup", arguments: { order_id: "A1" } }]),
      completion("Your order A1 has shipped."),
    );
    const result = await run(agent(), "exec-1");
    expect(result.status).toBe("completed");
    const [first, second] = servers.openai.completions();
    expect(first?.tools).toEqual([
      {
        type: "function",
        function: {
          name: "orders_lookup",
          description: "Look up an order by its id",
          parameters: {
            type: "object",
            properties: {
              order_id: { type: "string", description: "The order id", pattern: "^[A-Za-z0-9]+$" },
            },
            required: ["order_id"],
            additionalProperties: false,
          },
        },
      },
      {
        type: "function",
        function: {
          name: "ticket",
          description: "Open a support ticket",
          parameters: {
            type: "object",
            properties: { summary: { type: "string" }, urgent: { type: "boolean" } },
            required: ["summary"],
          },
        },
      },
    ]);
    const toolRequest = servers.api.requests[0]!;
    expect(toolRequest.path).toBe("/orders/A1");
    expect(toolRequest.query).toEqual({ verbose: "yes", order_id: "A1" });
    expect(toolRequest.headers["x-api-key"]).toBe("orders-secret-key");
    expect(toolRequest.headers["idempotency-key"]).toEqual(expect.any(String));
    expect(second?.messages.slice(-2)).toEqual([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_1",
            type: "function",
            function: { name: "orders_lookup", arguments: '{"order_id":"A1"}' },
          },
        ],
      },
      {
        role: "tool",
        tool_call_id: "call_1",
        content: JSON.stringify({ id: "A1", status: "shipped", verbose: "yes" }),
      },
    ]);
    expect(result.variables["tool_orders.lookup_result"]).toEqual({
      id: "A1",
      status: "shipped",
      verbose: "yes",
    });
    expect(result.output).toBe("Your order A1 has shipped.");
    const record = result.steps[0]!;
    expect(record).toMatchObject({ status: "succeeded", attempts: 2, usage: { totalTokens: 20 } });
    expect(record.toolCalls).toEqual([
      {
        round: 1,
        callId: "call_1",
        tool: "orders.lookup",
        arguments: { order_id: "A1" },
        status: "succeeded",
        attempts: 1,
        durationMs: expect.any(Number),
        httpStatus: 200,
      },
    ]);
    expect(StepRecordSchema.parse(record).toolCalls).toHaveLength(1);
    expect(JSON.stringify(result)).not.toContain("orders-secret-key");
  });

  it("runs the calls of one round concurrently, each with its own Idempotency-Key, and sends a failed call back as an error", async () => {
    inFlight = 0;
    maxInFlight = 0;
    servers.openai.queue(
      toolCallsCompletion([
        { id: "a", name: "orders_lookup", arguments: { order_id: "A1" } },
        { id: "b", name: "orders_lookup", arguments: { order_id: "B2" } },
        { id: "c", name: "orders_lookup", arguments: { order_id: "missing" } },
        { id: "d", name: "ticket", arguments: { summary: "late parcel", urgent: true } },
      ]),
      completion("done"),
    );
    const result = await run(agent(), "exec-2");
    expect(result.status).toBe("completed");
    expect(maxInFlight).toBe(2);
    const keys = servers.api.requests.map((request) => request.headers["idempotency-key"]);
    expect(new Set(keys).size).toBe(4);
    const ticket = servers.api.requests.find((request) => request.path === "/tickets");
    expect(ticket?.json).toEqual({ summary: "late parcel", urgent: true });
    const toolMessages = servers.openai.completions()[1]?.messages.filter((m) => m.role === "tool") ?? [];
    expect(toolMessages.map((m) => (m as { tool_call_id?: string }).tool_call_id)).toEqual([
      "a",
      "b",
      "c",
      "d",
    ]);
    expect(JSON.parse(toolMessages[2]!.content)).toEqual({
      error: expect.stringContaining("404"),
      status: 404,
    });
    expect(result.steps[0]?.toolCalls?.map((call) => [call.callId, call.status, call.httpStatus])).toEqual([
      ["a", "succeeded", 200],
      ["b", "succeeded", 200],
      ["c", "failed", 404],
      ["d", "succeeded", 201],
    ]);
    // The last successful call of a tool is its result.
    expect(result.variables["tool_orders.lookup_result"]).toMatchObject({ id: "B2" });
    expect(result.variables.tool_ticket_result).toEqual({
      created: { summary: "late parcel", urgent: true },
    });
  });

  it("does not execute a call whose arguments do not match the tool's schema, and tells the model why", async () => {
    servers.openai.queue(
      toolCallsCompletion([
        { id: "bad1", name: "orders_lookup", arguments: { order_id: "../admin" } },
        { id: "bad2", name: "ticket", arguments: "{not json" },
        { id: "bad3", name: "orders_lookup", arguments: { order_id: "A1", extra: "{secrets.ORDERS_KEY}" } },
      ]),
      completion("I could not look that up."),
    );
    const result = await run(agent());
    expect(result.status).toBe("completed");
    expect(servers.api.requests).toHaveLength(0);
    const toolMessages = servers.openai.completions()[1]?.messages.filter((m) => m.role === "tool") ?? [];
    expect(toolMessages.map((m) => JSON.parse(m.content).error)).toEqual([
      expect.stringContaining("/order_id must match pattern"),
      "the arguments are not valid JSON",
      expect.stringContaining("must NOT have additional properties"),
    ]);
    expect(result.steps[0]?.toolCalls?.map((call) => [call.status, call.error?.code, call.attempts])).toEqual(
      [
        ["invalid", "invalid_tool_arguments", 0],
        ["invalid", "invalid_tool_arguments", 0],
        ["invalid", "invalid_tool_arguments", 0],
      ],
    );
    expect(result.variables).not.toHaveProperty("tool_ticket_result");
  });

  it("places the model's values as they are, never as templates", async () => {
    servers.openai.queue(
      toolCallsCompletion([
        { name: "ticket", arguments: { summary: "key is {secrets.ORDERS_KEY} {question}" } },
      ]),
      completion("ok"),
    );
    await run(agent());
    expect(servers.api.requests[0]?.json).toEqual({ summary: "key is {secrets.ORDERS_KEY} {question}" });
  });

  it("fails the step with llm_unknown_tool when the model calls a tool it was not offered, storing nothing", async () => {
    servers.openai.queue(toolCallsCompletion([{ name: "delete_everything", arguments: {} }]));
    const result = await run(agent());
    expect(result.status).toBe("failed");
    expect(result.steps[0]).toMatchObject({ status: "failed", error: { code: "llm_unknown_tool" } });
    expect(servers.api.requests).toHaveLength(0);
    expect(result.variables).not.toHaveProperty("prompt_response_answer");
  });

  it("fails the step with tool_rounds_exceeded when the model keeps calling tools", async () => {
    const call = () => toolCallsCompletion([{ name: "orders_lookup", arguments: { order_id: "A1" } }]);
    servers.openai.queue(call(), call(), call());
    const result = await run(agent({ max_tool_rounds: 2 }));
    expect(result.status).toBe("failed");
    expect(result.steps[0]).toMatchObject({ error: { code: "tool_rounds_exceeded" } });
    expect(servers.openai.completions()).toHaveLength(3);
    expect(servers.api.requests).toHaveLength(2);
    expect(result.steps[0]?.toolCalls?.map((c) => c.round)).toEqual([1, 2]);
    expect(result.variables).not.toHaveProperty("tool_orders.lookup_result");
  });

  it("ends after the first round with continue_after_tools: false, the output being the model's text", async () => {
    servers.openai.queue(toolCallsCompletion([{ name: "ticket", arguments: { summary: "call me" } }]));
    const result = await run(agent({ continue_after_tools: false }));
    expect(result.status).toBe("completed");
    expect(servers.openai.completions()).toHaveLength(1);
    expect(result.variables.tool_ticket_result).toEqual({ created: { summary: "call me" } });
    expect(result.variables.prompt_response_answer).toBe("");
  });
});
