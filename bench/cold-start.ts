/**
 * 5. Cold start: builds the function bundles (scripts/build.ts, as `npm run build` does), then
 * per function the bundle size and the time to import its handler in a fresh Node process
 * (median of several processes), with an environment under which nothing can connect at
 * import time (endpoints on a closed loopback port, no LLM key). The import is timed twice,
 * alternately: with Node's defaults, and with the NODE_OPTIONS that serverless.yml deploys
 * (`--enable-source-maps`, under which Node also reads each loaded file's source map).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { parse } from "yaml";
import { median, round } from "./lib/report.ts";
import { type Benchmark, type BenchContext, NotBuiltError } from "./lib/types.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

export type ColdStartResult = Record<
  string,
  {
    /** All the JavaScript the function ships (index.mjs and its chunks). */
    bundleKb: number;
    /** What the import of index.mjs loads (index.mjs and the chunks it imports statically). */
    startupKb: number;
    /** import() of index.mjs, median, Node's default options. */
    initMs: number;
    /** The same with serverless.yml's NODE_OPTIONS (source maps on, as deployed). */
    initMsDeployedOptions: number;
  }
>;

/** serverless.yml's `provider.environment.NODE_OPTIONS`, what every deployed function runs with. */
function deployedNodeOptions(): string {
  const config = parse(readFileSync(path.join(ROOT, "serverless.yml"), "utf8")) as {
    provider?: { environment?: { NODE_OPTIONS?: string } };
  };
  return config.provider?.environment?.NODE_OPTIONS ?? "";
}

/** `offline`: an environment where nothing is reachable (scripts/build.ts offlineFunctionEnv). */
async function importOnce(
  bundle: string,
  offline: Record<string, string>,
  nodeOptions = "",
): Promise<number> {
  const { stdout } = await run(
    process.execPath,
    [fileURLToPath(new URL("./support/import-child.mjs", import.meta.url)), pathToFileURL(bundle).href],
    {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        ...offline,
        ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
      },
      timeout: 30_000,
    },
  );
  const line = stdout.trim().split("\n").at(-1) ?? "";
  return (JSON.parse(line) as { initMs: number }).initMs;
}

export const coldStartBenchmark: Benchmark<ColdStartResult> = {
  name: "coldStart",
  title: "Cold start: esbuild bundle size and handler import time in a fresh Node process",
  async run(context: BenchContext) {
    let buildFunctions: typeof import("../scripts/build.ts").buildFunctions;
    let offlineFunctionEnv: typeof import("../scripts/build.ts").offlineFunctionEnv;
    try {
      ({ buildFunctions, offlineFunctionEnv } = await import("../scripts/build.ts"));
    } catch (error) {
      throw new NotBuiltError(`scripts/build.ts cannot be loaded: ${(error as Error).message}`);
    }
    const buildStarted = performance.now();
    const { built } = await buildFunctions({ root: ROOT });
    context.log(
      `coldStart: built ${built.length} bundles in ${round((performance.now() - buildStarted) / 1000, 1)} s`,
    );
    const repeats = context.quick ? 3 : 7;
    const nodeOptions = deployedNodeOptions();
    // Nothing reachable: a connection attempted at import time would fail (and show).
    const offline = offlineFunctionEnv({
      AWS_LAMBDA_FUNCTION_NAME: "cold-start-bench",
      NODE_ENV: "production",
    });
    const result: ColdStartResult = {};
    const rows: Array<Array<string | number>> = [];
    for (const fn of [...built].sort((a, b) => a.name.localeCompare(b.name))) {
      if (!existsSync(fn.outfile)) throw new Error(`${fn.outfile} was not written`);
      await importOnce(fn.outfile, offline);
      await importOnce(fn.outfile, offline, nodeOptions);
      const plain: number[] = [];
      const deployed: number[] = [];
      for (let index = 0; index < repeats; index += 1) {
        plain.push(await importOnce(fn.outfile, offline));
        deployed.push(await importOnce(fn.outfile, offline, nodeOptions));
      }
      context.log(`coldStart ${fn.name}: ${plain.map((t) => round(t, 1)).join(", ")} ms`);
      context.log(
        `coldStart ${fn.name} (NODE_OPTIONS=${nodeOptions}): ${deployed.map((t) => round(t, 1)).join(", ")} ms`,
      );
      const bundleKb = round(fn.bytes / 1024, 1);
      const startupKb = round(fn.startupBytes / 1024, 1);
      result[fn.name] = {
        bundleKb,
        startupKb,
        initMs: round(median(plain), 1),
        initMsDeployedOptions: round(median(deployed), 1),
      };
      rows.push([
        fn.name,
        path.relative(ROOT, fn.outfile),
        fn.files.length,
        bundleKb,
        startupKb,
        round(median(plain), 1),
        round(Math.min(...plain), 1),
        round(median(deployed), 1),
      ]);
    }
    return {
      result,
      table: {
        headers: [
          "function",
          "entry",
          "files",
          "bundle KB",
          "loaded KB",
          "init ms (median)",
          "init ms (min)",
          "init ms as deployed",
        ],
        rows,
      },
      notes: [
        "bundles from scripts/build.ts (esbuild, minified ESM, node24, code splitting): bundle KB is all the JavaScript of the function (index.mjs and its chunks), loaded KB what the import of index.mjs loads (the chunks it imports statically; the others are loaded by `await import()` if that code runs); the .map files are not counted",
        `init = the time of import() of index.mjs in a fresh \`node\` process (no loader), median of ${repeats} processes after one untimed; the start of Node itself is not included`,
        `init as deployed: the same with serverless.yml's NODE_OPTIONS (${nodeOptions || "none"}), timed alternately with the plain one`,
        "environment: endpoints on a closed loopback port, static credentials, no LLM key, so nothing connects at import time",
      ],
    };
  },
};
