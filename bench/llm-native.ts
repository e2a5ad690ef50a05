/**
 * LLM-native overhead: what the engine itself adds per tool round of a prompt step (the
 * model's function call parsed and validated, the tool request built and sent through the
 * tool path, the result sent back) and per streamed token (the delta handed from the LLM port
 * to the run's onToken hook). Ports are instant: an LLM port that calls a tool for R rounds
 * (or streams N deltas) and a tool port that answers at once, so only the engine is measured.
 * Figures are the difference of medians of timed batches between R rounds and none (N tokens
 * and none), divided by R (N).
 */
import { runProtocol } from "../lib/engine/engine.ts";
import type { MovaDocument } from "../lib/mova/schema.ts";
import { validateDocument } from "../lib/mova/validate.ts";
import type { EnginePorts, LlmPort, LlmRequest, ToolPort } from "../lib/ports.ts";
import { median, round } from "./lib/report.ts";
import type { BenchContext, Benchmark } from "./lib/types.ts";

export interface LlmNativeResult {
  usPerToolRound: number;
  usPerStreamedToken: number;
  toolRounds: number;
  tokens: number;
}

function agentDocument(maxRounds: number): MovaDocument {
  const checked = validateDocument({
    version: "2.2",
    tools: [
      {
        id: "orders.lookup",
        description: "Find an order",
        endpoint: "https://api.example.com/orders/{order_id}",
        method: "GET",
        parameters: { order_id: { type: "string", pattern: "^[A-Z0-9]+$" }, key: "fixed" },
      },
    ],
    protocols: [
      {
        name: "agent",
        steps: [
          {
            id: "answer",
            action: "prompt",
            prompt: "Help with {question}",
            tools: ["orders.lookup"],
            max_tool_rounds: Math.max(1, maxRounds),
          },
        ],
      },
    ],
  });
  if (!checked.document) throw new Error("the benchmark's document is invalid");
  return checked.document;
}

/** Calls the tool in each of the first `rounds` answers, then answers with text. */
function toolCallingLlm(rounds: number): LlmPort {
  return {
    offline: false,
    complete: async (request: LlmRequest) => {
      const done = request.messages.filter((message) => message.role === "tool").length;
      if (done < rounds) {
        return {
          text: "",
          model: "instant",
          toolCalls: [{ id: `call_${done}`, name: "orders_lookup", arguments: '{"order_id":"A1"}' }],
        };
      }
      return { text: "shipped", model: "instant" };
    },
  };
}

/** Streams `tokens` deltas to the request's onDelta, then answers with their text. */
function streamingLlm(tokens: number): LlmPort {
  return {
    offline: false,
    complete: async (request: LlmRequest) => {
      if (request.onDelta) for (let index = 0; index < tokens; index += 1) request.onDelta(" tok");
      return { text: " tok".repeat(tokens), model: "instant" };
    },
  };
}

const instantTools: ToolPort = {
  call: async () => ({ status: 200, headers: {}, body: { status: "shipped" } }),
};

async function timeBatch(runs: number, once: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  for (let index = 0; index < runs; index += 1) await once();
  return Number(process.hrtime.bigint() - started) / 1000 / runs;
}

/** Medians (µs per run) of `batches` alternating batches of two variants. */
async function alternate(
  batches: number,
  runs: number,
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
): Promise<[number, number]> {
  const as: number[] = [];
  const bs: number[] = [];
  for (let index = 0; index < batches; index += 1) {
    as.push(await timeBatch(runs, a));
    bs.push(await timeBatch(runs, b));
  }
  return [median(as), median(bs)];
}

export const llmNativeBenchmark: Benchmark<LlmNativeResult> = {
  name: "llmNative",
  title: "LLM-native overhead per tool round and per streamed token (instant ports)",
  async run(context: BenchContext) {
    const toolRounds = 10;
    const tokens = 1000;
    const batches = context.quick ? 5 : 15;
    const runs = context.quick ? 20 : 100;
    const noTools = agentDocument(0);
    const withTools = agentDocument(toolRounds);
    const portsOf = (llm: LlmPort): EnginePorts => ({ llm, tools: instantTools });
    const zeroRoundPorts = portsOf(toolCallingLlm(0));
    const roundPorts = portsOf(toolCallingLlm(toolRounds));
    const variables = { question: "where is A1?" };
    const runAgent = (document: MovaDocument, ports: EnginePorts) => async () => {
      const result = await runProtocol({
        document,
        protocol: "agent",
        variables,
        ports,
        executionId: "bench",
      });
      if (result.status !== "completed") throw new Error(`the agent run ended ${result.status}`);
    };
    context.log("llmNative: warming up");
    await alternate(2, runs, runAgent(noTools, zeroRoundPorts), runAgent(withTools, roundPorts));
    context.log("llmNative: tool rounds");
    const [zeroRounds, manyRounds] = await alternate(
      batches,
      runs,
      runAgent(noTools, zeroRoundPorts),
      runAgent(withTools, roundPorts),
    );

    let sunk = 0;
    const onToken = (_stepId: string, delta: string) => {
      sunk += delta.length;
    };
    const streamRun = (ports: EnginePorts, withSink: boolean) => async () => {
      await runProtocol({
        document: noTools,
        protocol: "agent",
        variables,
        ports,
        ...(withSink ? { onToken } : {}),
      });
    };
    const silent = portsOf(streamingLlm(0));
    const streaming = portsOf(streamingLlm(tokens));
    context.log("llmNative: streamed tokens");
    await alternate(2, runs, streamRun(silent, true), streamRun(streaming, true));
    const [noTokens, manyTokens] = await alternate(
      batches,
      runs,
      streamRun(silent, true),
      streamRun(streaming, true),
    );
    if (sunk === 0) throw new Error("no token reached the sink");

    const result: LlmNativeResult = {
      usPerToolRound: round((manyRounds - zeroRounds) / toolRounds, 2),
      usPerStreamedToken: round((manyTokens - noTokens) / tokens, 4),
      toolRounds,
      tokens,
    };
    return {
      result,
      table: {
        headers: [
          "measure",
          "µs per run (0)",
          `µs per run (${toolRounds} rounds / ${tokens} tokens)`,
          "µs each",
        ],
        rows: [
          ["tool round", round(zeroRounds, 1), round(manyRounds, 1), result.usPerToolRound],
          ["streamed token", round(noTokens, 1), round(manyTokens, 1), result.usPerStreamedToken],
        ],
      },
      notes: [
        `A prompt step offering one tool, with instant ports; medians of ${batches} alternating batches of ${runs} runs.`,
        "A tool round: the call's arguments parsed and validated (Ajv), the request built (templates, query), an Idempotency-Key hashed, the instant tool port called through the retry loop, the result sent back, and one more model call.",
        "A streamed token: the LLM port's delta through the step's sink guard to RunOptions.onToken (no provider parsing: that is the openai SDK's).",
      ],
    };
  },
};
