/**
 * The concurrency benchmark's batches with the LLM port over Node's built-in `fetch` and over
 * ./lib/adapters/http/node-fetch.ts (the default), side by side in one process, alternating: wall
 * time and this process's CPU per execution. Same protocol, servers and delays as
 * bench/concurrency.ts (100 ms LLM, 50 ms tool), and the same JIT warm-up (WARMUP executions
 * per variant in batches of 100, alternating) before the timed sizes. A run that fails (a
 * transport error: the SDK makes no retries here) is counted and reported, not fatal.
 *
 * A third variant, `nosdk`, is a measurement and not a port: the chat completion as one POST over
 * node-fetch.ts and a JSON parse, without the `openai` SDK (no retries, no error mapping) — what
 * the LLM port would cost without the SDK's request and response handling. Usage:
 * `node [node flags] --import tsx bench/concurrency-transports.ts`
 * (VARIANTS=builtin,node SIZES=10,100,1000 REPEATS=5 WARMUP=3000 by default; VARIANTS=node,nosdk).
 */
import { fileURLToPath } from "node:url";
import { runProtocol } from "../lib/engine/engine.ts";
import { createNodeFetch } from "../lib/adapters/http/node-fetch.ts";
import type { EnginePorts, LlmPort } from "../lib/ports.ts";
import { concurrencyDocument, concurrencyPorts } from "./concurrency.ts";
import { median } from "./lib/report.ts";
import { startChild } from "./support/child.ts";

const servers = await startChild<{ openaiBaseURL: string; toolURL: string }>(
  fileURLToPath(new URL("./support/servers-child.ts", import.meta.url)),
  { BENCH_LLM_DELAY_MS: "100", BENCH_TOOL_DELAY_MS: "50" },
  [],
);
const document = concurrencyDocument(servers.ready.toolURL);

/** The `nosdk` variant's LLM port: the request the SDK sends and the fields the port reads, nothing else. */
function withoutSdk(baseURL: string): LlmPort {
  const fetch = createNodeFetch();
  const url = `${baseURL}/chat/completions`;
  return {
    offline: false,
    async complete(request, signal) {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          authorization: "Bearer bench-key",
          "content-type": "application/json",
          accept: "application/json",
        },
        body: JSON.stringify({ model: request.model ?? "bench-model", messages: request.messages }),
        ...(signal ? { signal } : {}),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const completion = (await response.json()) as {
        model: string;
        choices: Array<{ message: { content: string } }>;
        usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
      };
      return {
        text: completion.choices[0]?.message.content ?? "",
        model: completion.model,
        usage: {
          promptTokens: completion.usage.prompt_tokens,
          completionTokens: completion.usage.completion_tokens,
          totalTokens: completion.usage.total_tokens,
        },
      };
    },
  };
}

const variants = new Map<string, EnginePorts>(
  (process.env.VARIANTS ?? "builtin,node").split(",").map((name) => {
    const ports = concurrencyPorts(
      servers.ready.openaiBaseURL,
      name === "builtin" ? globalThis.fetch : undefined,
    );
    return [name, name === "nosdk" ? { ...ports, llm: withoutSdk(servers.ready.openaiBaseURL) } : ports];
  }),
);
const sizes = (process.env.SIZES ?? "10,100,1000").split(",").map(Number);
const repeats = Number(process.env.REPEATS ?? 5);
const warmup = Number(process.env.WARMUP ?? 3000);
/** Failed runs per variant, with the first error of each kind. */
const failures = new Map<string, Map<string, number>>();

async function batch(
  name: string,
  ports: EnginePorts,
  count: number,
): Promise<{ wallMs: number; cpuMs: number }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const result = await runProtocol({
        document,
        protocol: "research",
        variables: { topic: `topic ${index}` },
        ports,
      });
      if (result.status !== "completed" || result.output !== `ok / found topic ${index}`) {
        const kinds = failures.get(name) ?? new Map<string, number>();
        const kind = result.error?.message ?? `${result.status}: ${JSON.stringify(result.output)}`;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        failures.set(name, kinds);
      }
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  return { wallMs: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000 / count };
}

console.log(
  `Node ${process.version} ${process.execArgv.filter((arg) => arg !== "--import" && arg !== "tsx").join(" ")}`,
);
// JIT warm-up, as in bench/concurrency.ts: V8 needs a few thousand executions to optimise this path.
for (let done = 0; done < warmup; done += 100)
  for (const [name, ports] of variants) await batch(name, ports, 100);
failures.clear();
for (const size of sizes) {
  const figures = new Map<string, { wall: number[]; cpu: number[] }>();
  for (const [name, ports] of variants) await batch(name, ports, size);
  for (let repeat = 0; repeat < repeats; repeat += 1) {
    for (const [name, ports] of variants) {
      const { wallMs, cpuMs } = await batch(name, ports, size);
      const entry = figures.get(name) ?? { wall: [], cpu: [] };
      entry.wall.push(wallMs);
      entry.cpu.push(cpuMs);
      figures.set(name, entry);
    }
  }
  for (const [name, { wall, cpu }] of figures)
    console.log(
      `${size} concurrent, ${name}: wall median ${median(wall).toFixed(1)} ms (ratio ${(median(wall) / 250).toFixed(3)}) [${wall.map((ms) => ms.toFixed(0)).join(" ")}], CPU ${median(cpu).toFixed(2)} ms/execution`,
    );
}
for (const [name, kinds] of failures)
  for (const [kind, count] of kinds) console.log(`${name}: ${count} failed runs: ${kind}`);
await new Promise<void>((resolve) => {
  servers.process.once("message", (stats) => {
    console.log("servers:", stats);
    resolve();
  });
  servers.process.send("stats");
});
await servers.close();
