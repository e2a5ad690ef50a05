/**
 * 2. Engine overhead: the engine's own cost per step. The same six-step flow with a branch
 * runs with instant ports (an LLM and a tool port that resolve at once, so nothing but the
 * engine is measured) by our engine and, in the same process and the same run, as a
 * `StateGraph` of @langchain/langgraph whose nodes call the same instant functions and whose
 * branch is a conditional edge. Figures are microseconds per step, medians of timed batches
 * taken alternately after a warm-up; ratio = LangGraph / MOVA.
 */
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import { runProtocol } from "../lib/engine/engine.ts";
import type { EnginePorts, LlmPort, LlmRequest, ToolPort, ToolRequest } from "../lib/ports.ts";
import type { MovaDocument } from "../lib/mova/schema.ts";
import { validateDocument } from "../lib/mova/validate.ts";
import { fileURLToPath } from "node:url";
import { median, round } from "./lib/report.ts";
import type { Benchmark, BenchContext } from "./lib/types.ts";
import { runChild } from "./support/child.ts";

export interface EngineOverheadResult {
  movaUsPerStep: number;
  langgraphUsPerStep: number;
  ratio: number;
}

/** The flow: intake (prompt) → route (condition) → lookup (tool) → draft (prompt) → review (prompt) → done (end). */
export const STEPS_PER_RUN = 6;

const instantLlm: LlmPort = {
  offline: false,
  complete: async (request: LlmRequest) => ({
    text: request.messages.at(-1)?.content.startsWith("Classify") ? "billing" : "fine",
    model: "instant",
  }),
};
const instantTools: ToolPort = {
  call: async (_request: ToolRequest) => ({ status: 200, headers: {}, body: { plan: "pro" } }),
};
const ports: EnginePorts = { llm: instantLlm, tools: instantTools };

export function overheadDocument(): MovaDocument {
  const checked = validateDocument({
    version: "2.2",
    tools: [
      {
        id: "accounts",
        name: "Accounts",
        endpoint: "https://api.example.com/accounts/{customer}",
        method: "GET",
      },
    ],
    protocols: [
      {
        name: "support",
        steps: [
          { id: "intake", action: "prompt", prompt: "Classify: {question}", output: "category" },
          {
            id: "route",
            action: "condition",
            conditions: [{ variable: "category", operator: "equals", value: "billing" }],
            else_step: "general",
          },
          { id: "lookup", action: "tool_api", tool_api_id: "accounts", output: "account" },
          {
            id: "draft",
            action: "prompt",
            prompt: "Answer {question} for plan {account.plan}",
            output: "draft",
          },
          { id: "review", action: "prompt", prompt: "Review: {draft}", output: "final" },
          { id: "done", action: "end", response_template: "{final}" },
          {
            id: "general",
            action: "prompt",
            prompt: "Answer generally: {question}",
            output: "draft",
            next_step: "review",
          },
        ],
      },
    ],
  });
  if (!checked.valid || !checked.document)
    throw new Error(`the benchmark document is invalid: ${JSON.stringify(checked.errors)}`);
  return checked.document;
}

const Flow = Annotation.Root({
  question: Annotation<string>,
  customer: Annotation<string>,
  category: Annotation<string>,
  account: Annotation<{ plan: string }>,
  draft: Annotation<string>,
  final: Annotation<string>,
  output: Annotation<string>,
});

const ask = async (content: string) =>
  (await instantLlm.complete({ messages: [{ role: "user", content }] })).text;

/** The same flow as a LangGraph state graph: six nodes on the path, the branch as a conditional edge (node names may not repeat state keys). */
export function overheadGraph() {
  return new StateGraph(Flow)
    .addNode("intake", async (state) => ({ category: await ask(`Classify: ${state.question}`) }))
    .addNode("route", async () => ({}))
    .addNode("lookup", async (state) => {
      const response = await instantTools.call({
        toolId: "accounts",
        method: "GET",
        url: `https://api.example.com/accounts/${state.customer}`,
        headers: {},
      });
      return { account: response.body as { plan: string } };
    })
    .addNode("general", async (state) => ({ draft: await ask(`Answer generally: ${state.question}`) }))
    .addNode("draftAnswer", async (state) => ({
      draft: await ask(`Answer ${state.question} for plan ${state.account.plan}`),
    }))
    .addNode("reviewAnswer", async (state) => ({ final: await ask(`Review: ${state.draft}`) }))
    .addNode("done", async (state) => ({ output: state.final }))
    .addEdge(START, "intake")
    .addEdge("intake", "route")
    .addConditionalEdges("route", (state) => (state.category === "billing" ? "lookup" : "general"), [
      "lookup",
      "general",
    ])
    .addEdge("lookup", "draftAnswer")
    .addEdge("draftAnswer", "reviewAnswer")
    .addEdge("general", "reviewAnswer")
    .addEdge("reviewAnswer", "done")
    .addEdge("done", END)
    .compile();
}

export const overheadInput = { question: "why was I charged twice?", customer: "c-42" };

export async function runMovaOnce(document: MovaDocument): Promise<void> {
  const result = await runProtocol({ document, protocol: "support", variables: overheadInput, ports });
  if (result.status !== "completed" || result.path.length !== STEPS_PER_RUN)
    throw new Error(`the MOVA run went wrong: ${result.status} ${result.path.join(" > ")}`);
}

async function timeRuns(runs: number, once: () => Promise<void>): Promise<number> {
  const started = performance.now();
  for (let index = 0; index < runs; index += 1) await once();
  return ((performance.now() - started) * 1000) / (runs * STEPS_PER_RUN);
}

export interface OverheadFigures {
  mova: number[];
  langgraph: number[];
  movaRuns: number;
  graphRuns: number;
  batches: number;
}

/** Warms both up, then times alternating batches (run in engine-overhead-child.ts, a fresh process). */
export async function measureOverhead(quick: boolean): Promise<OverheadFigures> {
  const document = overheadDocument();
  const graph = overheadGraph();
  const runGraphOnce = async () => {
    const state = await graph.invoke(overheadInput);
    if (state.output !== "fine" || state.account?.plan !== "pro")
      throw new Error(`the LangGraph run went wrong: ${JSON.stringify(state)}`);
  };
  const movaRuns = quick ? 1000 : 3000;
  const graphRuns = quick ? 50 : 200;
  const batches = quick ? 3 : 7;
  // Warm-up: enough runs for both to be optimised by the JIT before anything is timed.
  await timeRuns(movaRuns * 2, () => runMovaOnce(document));
  await timeRuns(graphRuns * 2, runGraphOnce);
  const mova: number[] = [];
  const langgraph: number[] = [];
  for (let batch = 0; batch < batches; batch += 1) {
    mova.push(await timeRuns(movaRuns, () => runMovaOnce(document)));
    langgraph.push(await timeRuns(graphRuns, runGraphOnce));
  }
  return { mova, langgraph, movaRuns, graphRuns, batches };
}

export const engineOverheadBenchmark: Benchmark<EngineOverheadResult> = {
  name: "engineOverhead",
  title: "Engine overhead: a six-step flow with a branch, instant ports, µs per step",
  async run(context: BenchContext) {
    const figures = await runChild<OverheadFigures>(
      fileURLToPath(new URL("./engine-overhead-child.ts", import.meta.url)),
      { BENCH_QUICK: context.quick ? "1" : "0" },
    );
    const { mova, langgraph, movaRuns, graphRuns, batches } = figures;
    context.log(`engineOverhead mova µs/step: ${mova.map((v) => round(v, 1)).join(", ")}`);
    context.log(`engineOverhead langgraph µs/step: ${langgraph.map((v) => round(v, 1)).join(", ")}`);
    const movaUsPerStep = median(mova);
    const langgraphUsPerStep = median(langgraph);
    const result: EngineOverheadResult = {
      movaUsPerStep: round(movaUsPerStep, 2),
      langgraphUsPerStep: round(langgraphUsPerStep, 1),
      ratio: round(langgraphUsPerStep / movaUsPerStep, 1),
    };
    return {
      result,
      table: {
        headers: ["engine", "µs per step", "runs per batch", "batches"],
        rows: [
          ["MOVA runProtocol", result.movaUsPerStep, movaRuns, batches],
          ["LangGraph StateGraph", result.langgraphUsPerStep, graphRuns, batches],
          ["ratio (LangGraph / MOVA)", result.ratio, null, null],
        ],
      },
      notes: [
        "instant ports (LLM and tool port objects that resolve at once): the figure is the engine's own cost per step, not an LLM's",
        "both run the same flow (intake prompt → route condition → lookup tool → draft prompt → review prompt → done) one run after another, in one fresh process (through tsx), warmed up, batches alternating; medians of the batches",
      ],
    };
  },
};
