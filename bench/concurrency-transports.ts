/**
 * The concurrency benchmark's batches with the LLM port over Node's built-in `fetch` and over
 * ./lib/adapters/http/node-fetch.ts (the default), side by side in one process, alternating: wall
 * time and this process's CPU per execution. Same protocol, servers and delays as
 * bench/concurrency.ts (100 ms LLM, 50 ms tool), and the same JIT warm-up (WARMUP executions
 * per variant in batches of 100, alternating) before the timed sizes. A run that fails (a
 * transport error: the SDK makes no retries here) is counted and reported, not fatal. Usage:
 * `node [node flags] --import tsx bench/concurrency-transports.ts`
 * (VARIANTS=builtin,node SIZES=10,100,1000 REPEATS=5 WARMUP=3000 by default).
 */
import { fileURLToPath } from "node:url";
import { runProtocol } from "../lib/engine/engine.ts";
import type { EnginePorts } from "../lib/core/ports.ts";
import { concurrencyDocument, concurrencyPorts } from "./concurrency.ts";
import { median } from "./lib/report.ts";
import { startChild } from "./support/child.ts";

const servers = await startChild<{ openaiBaseURL: string; toolURL: string }>(
  fileURLToPath(new URL("./support/servers-child.ts", import.meta.url)),
  { BENCH_LLM_DELAY_MS: "100", BENCH_TOOL_DELAY_MS: "50" },
  [],
);
const document = concurrencyDocument(servers.ready.toolURL);
const variants = new Map<string, EnginePorts>(
  (process.env.VARIANTS ?? "builtin,node")
    .split(",")
    .map((name) => [
      name,
      concurrencyPorts(servers.ready.openaiBaseURL, name === "builtin" ? globalThis.fetch : undefined),
    ]),
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
      if (result.status !== "completed") {
        const kinds = failures.get(name) ?? new Map<string, number>();
        const kind = result.error?.message ?? result.status;
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
      `${size} concurrent, ${name} fetch: wall median ${median(wall).toFixed(1)} ms (ratio ${(median(wall) / 250).toFixed(3)}) [${wall.map((ms) => ms.toFixed(0)).join(" ")}], CPU ${median(cpu).toFixed(2)} ms/execution`,
    );
}
for (const [name, kinds] of failures)
  for (const [kind, count] of kinds) console.log(`${name} fetch: ${count} failed runs: ${kind}`);
await new Promise<void>((resolve) => {
  servers.process.once("message", (stats) => {
    console.log("servers:", stats);
    resolve();
  });
  servers.process.send("stats");
});
await servers.close();
