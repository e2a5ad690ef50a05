/**
 * `npm run bench [-- --quick] [-- --only <name>] [-- --out <file>] [-- --sequential-1000]`:
 * runs the benchmarks one after another, prints a table per benchmark with the machine and
 * the Node version, and writes the figures to bench/results.json (a quick run or a run of
 * some benchmarks only writes bench/results.quick.json unless --out says otherwise, so the
 * committed full figures are never overwritten by partial ones).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { formatTable, parseBenchArgs } from "./lib/report.ts";
import { type Benchmark, NotBuiltError } from "./lib/types.ts";

interface Loaded {
  name: string;
  load: () => Promise<Benchmark>;
}

// Each benchmark is imported only when it runs, so a missing dependency of one does not stop the others.
const BENCHMARKS: Loaded[] = [
  {
    name: "concurrency",
    load: async () => (await import("./concurrency.ts")).concurrencyBenchmark as Benchmark,
  },
  {
    name: "engineOverhead",
    load: async () => (await import("./engine-overhead.ts")).engineOverheadBenchmark as Benchmark,
  },
  { name: "analysis", load: async () => (await import("./analysis.ts")).analysisBenchmark as Benchmark },
  {
    name: "requestPath",
    load: async () => (await import("./request-path.ts")).requestPathBenchmark as Benchmark,
  },
  { name: "coldStart", load: async () => (await import("./cold-start.ts")).coldStartBenchmark as Benchmark },
  {
    name: "llmNative",
    load: async () => (await import("./llm-native.ts")).llmNativeBenchmark as Benchmark,
  },
  {
    name: "durability",
    load: async () => (await import("./durability.ts")).durabilityBenchmark as Benchmark,
  },
  { name: "runEvents", load: async () => (await import("./run-events.ts")).runEventsBenchmark as Benchmark },
];

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

async function main(): Promise<void> {
  const args = parseBenchArgs(
    process.argv.slice(2),
    BENCHMARKS.map((b) => b.name),
  );
  const selected = BENCHMARKS.filter((b) => args.only.length === 0 || args.only.includes(b.name));
  const partial = args.quick || args.only.length > 0;
  const out =
    args.out ?? fileURLToPath(new URL(partial ? "./results.quick.json" : "./results.json", import.meta.url));
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const host = machine();
  const load = os.loadavg().map((value) => Math.round(value * 100) / 100);
  const header = [
    `command: ${command}`,
    `machine: ${host.cpu}, ${host.cores} cores, ${host.memoryGb} GB, ${host.platform}`,
    `node: ${host.node}`,
    `load average at start (1/5/15 min): ${load.join(" / ")}`,
  ];
  console.log(header.join("\n"));

  const log = (message: string) => process.stderr.write(`  · ${message}\n`);
  const results: Record<string, unknown> = {};
  const notes: Record<string, string[]> = {};
  const notBuilt: Record<string, string> = {};
  const seconds: Record<string, number> = {};
  const started = performance.now();
  let failed = false;

  for (const entry of selected) {
    const benchStarted = performance.now();
    try {
      const benchmark = await entry.load();
      console.log(`\n## ${benchmark.name}: ${benchmark.title}`);
      const outcome = await benchmark.run({ quick: args.quick, sequential1000: args.sequential1000, log });
      results[entry.name] = outcome.result;
      notes[entry.name] = outcome.notes;
      console.log(formatTable(outcome.table.headers, outcome.table.rows));
      for (const note of outcome.notes) console.log(`  note: ${note}`);
    } catch (error) {
      if (
        error instanceof NotBuiltError ||
        (error as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND"
      ) {
        notBuilt[entry.name] = (error as Error).message;
        console.log(`\n## ${entry.name}: NOT BUILT (${(error as Error).message})`);
      } else {
        failed = true;
        notBuilt[entry.name] = `failed: ${(error as Error).stack ?? String(error)}`;
        console.log(`\n## ${entry.name}: FAILED\n${(error as Error).stack ?? String(error)}`);
      }
    }
    seconds[entry.name] = Math.round((performance.now() - benchStarted) / 100) / 10;
  }

  const totalSeconds = Math.round((performance.now() - started) / 100) / 10;
  const previous =
    args.only.length > 0 && existsSync(out)
      ? (JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>)
      : {};
  const document = {
    ...previous,
    ...results,
    meta: {
      ...((previous.meta as Record<string, unknown> | undefined) ?? {}),
      command,
      mode: args.quick ? "quick" : "full",
      date: new Date().toISOString(),
      machine: host,
      loadAverageAtStart: load,
      loadAverageAtEnd: os.loadavg().map((value) => Math.round(value * 100) / 100),
      seconds: {
        ...(((previous.meta as { seconds?: object } | undefined)?.seconds as object) ?? {}),
        ...seconds,
        total: totalSeconds,
      },
      notes: { ...(((previous.meta as { notes?: object } | undefined)?.notes as object) ?? {}), ...notes },
      notBuilt,
    },
  };
  writeFileSync(out, `${JSON.stringify(document, null, 2)}\n`);
  console.log(`\nwrote ${out} in ${totalSeconds} s`);
  if (failed) process.exitCode = 1;
}

await main();
