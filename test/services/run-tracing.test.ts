/** The spans a run leg's step records make (pure: no exporter). */
import { describe, expect, it } from "vitest";
import type { StepRecord } from "../../lib/core/run.ts";
import { legTrace } from "../../lib/services/run-tracing.ts";

const start = Date.parse("2026-01-01T00:00:00.000Z");

const promptWithTools: StepRecord = {
  id: "ask",
  action: "prompt",
  status: "succeeded",
  attempts: 1,
  startedAt: new Date(start).toISOString(),
  durationMs: 100,
  model: "backup-model",
  usage: { promptTokens: 40, completionTokens: 12, totalTokens: 52 },
  costUsd: 0.001,
  modelFailures: [{ model: "main-model", attempts: 1, error: { code: "llm_unavailable", message: "503" } }],
  toolCalls: [
    {
      round: 1,
      callId: "c1",
      tool: "weather",
      arguments: { city: "Oslo" },
      status: "succeeded",
      attempts: 1,
      durationMs: 30,
    },
    {
      round: 1,
      callId: "c2",
      tool: "orders",
      arguments: {},
      status: "failed",
      attempts: 2,
      durationMs: 500,
      error: { code: "tool_http_status", message: "502" },
    },
  ],
};

const trace = (steps: StepRecord[], status = "completed") =>
  legTrace({
    tenant: "acme",
    executionId: "ex_1",
    document: "support",
    protocol: "help",
    status,
    steps,
    startMs: start - 5,
    endMs: start + 200,
    system: "openai",
  });

describe("legTrace", () => {
  it("a prompt step's model calls: the model first asked, the one that answered, the tokens and each tool call", () => {
    const [step] = trace([promptWithTools]).children;
    const [chat, weather, orders] = step!.children;
    expect(chat!.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "main-model",
      "gen_ai.response.model": "backup-model",
      "gen_ai.usage.input_tokens": 40,
      "gen_ai.usage.output_tokens": 12,
      "mova.cost_usd": 0.001,
    });
    expect(weather).toMatchObject({
      name: "execute_tool weather",
      startMs: start,
      endMs: start + 30,
      attributes: { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "weather" },
    });
    // Laid end to end, and never past the step's end.
    expect(orders).toMatchObject({ startMs: start + 30, endMs: start + 100, error: "502" });
    expect(orders!.attributes["error.type"]).toBe("tool_http_status");
  });

  it("no arguments, prompts or outputs in any attribute", () => {
    const text = JSON.stringify(trace([{ ...promptWithTools, prompt: "the prompt", output: "the reply" }]));
    expect(text).not.toContain("Oslo");
    expect(text).not.toContain("the prompt");
    expect(text).not.toContain("the reply");
  });

  it("a failed run's root span is an error", () => {
    const root = legTrace({
      tenant: "acme",
      executionId: "ex_2",
      document: "support",
      protocol: "help",
      status: "failed",
      error: { code: "tool_http_status", message: "step failed" },
      steps: [],
      startMs: start,
      endMs: start + 1,
      system: "openai",
    });
    expect(root.error).toBe("step failed");
    expect(root.attributes["error.type"]).toBe("tool_http_status");
  });
});
