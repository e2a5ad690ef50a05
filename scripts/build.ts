/**
 * Bundles every function that serverless.yml names into dist/<name>/: index.mjs, the ES module
 * Lambda imports, and the chunks it imports (+ .map each), self-contained per function, and
 * writes esbuild's metafile to dist/meta/<name>.json (inspect it with
 * https://esbuild.github.io/analyze/).
 *
 *   tsx scripts/build.ts                  # all functions; a missing source fails the build
 *   tsx scripts/build.ts --allow-missing  # during development: skip missing sources, with a warning
 *
 * serverless.yml is the one list of functions: each `handler: dist/<name>/index.handler` is
 * built from `functions/<name>.ts`.
 *
 * Everything is bundled, the AWS SDK clients included, although the nodejs24.x runtime ships
 * an SDK v3: the runtime's copy changes version without notice, and the bundle then runs the
 * exact client versions the tests ran against. Tree shaking keeps the cost to the modules we
 * import (see the sizes printed below).
 *
 * What keeps the cold start short (the import of index.mjs compiles and evaluates everything
 * it loads, before the first request):
 * - Code splitting: what the dependencies load with `await import()` only when they need it
 *   (the AWS SDK's credential providers other than the environment's, with their STS, SSO and
 *   sign-in clients) is in chunks of its own, read only if that code runs. On Lambda the
 *   credentials are in the environment, so these chunks are never loaded.
 * - zod: the sources import it as `import * as z from "zod"` (the form zod 4's documentation uses):
 *   every `z.x` is then a static reference and only what the code uses is kept. The other form,
 *   `import { z } from "zod"`, binds zod's namespace object as a value, which esbuild keeps
 *   whole (zod classic: its 64 locales, the JSON Schema importer, the compiler: ~340 KB);
 *   test/scripts/build.test.ts checks that the bundles hold no locale but English.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";
import { parse } from "yaml";
import { bundleDashboard } from "./dashboard-bundle.ts";

/** The dashboard's script, beside the API function's index.mjs (lib/wiring/api.ts reads it there). */
export const DASHBOARD_FILE = "dashboard.js";

export interface FunctionEntry {
  /** The function's key in serverless.yml (`batchAnalysis`). */
  name: string;
  /** The directory name under dist/ and the source file's base name (`batch-analysis`). */
  bundleName: string;
  /** Absolute path of the TypeScript source. */
  source: string;
  /** Absolute path of the bundle's entry module (`index.mjs`; its chunks are next to it). */
  outfile: string;
}

export interface BuiltFunction extends FunctionEntry {
  /** All the JavaScript the function ships: index.mjs and every chunk. */
  bytes: number;
  /** What importing index.mjs loads: index.mjs and the chunks it imports statically. */
  startupBytes: number;
  /** Absolute paths of the JavaScript files: index.mjs first, then the chunks. */
  files: string[];
  metafile: string;
}

export class BuildError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "BuildError";
    this.code = code;
  }
}

const HANDLER = /^dist\/([a-z0-9][a-z0-9-]*)\/index\.handler$/;

/**
 * Reads the functions from serverless.yml's text; `root` is the directory that holds it, `dist`
 * where the bundles go (`<root>/dist`, the directory serverless.yml packages, by default).
 */
export function functionEntries(
  serverlessYaml: string,
  root: string,
  dist: string = path.join(root, "dist"),
): FunctionEntry[] {
  const config = parse(serverlessYaml) as { functions?: Record<string, { handler?: unknown }> } | null;
  const functions = config?.functions;
  if (!functions || Object.keys(functions).length === 0) {
    throw new BuildError("no_functions", "serverless.yml declares no functions");
  }
  return Object.entries(functions).map(([name, fn]) => {
    const handler = fn?.handler;
    const match = typeof handler === "string" ? HANDLER.exec(handler) : null;
    if (!match) {
      throw new BuildError(
        "bad_handler",
        `function ${name}: handler must be "dist/<name>/index.handler", got ${JSON.stringify(handler)}`,
      );
    }
    const bundleName = match[1]!;
    return {
      name,
      bundleName,
      source: path.join(root, "functions", `${bundleName}.ts`),
      outfile: path.join(dist, bundleName, "index.mjs"),
    };
  });
}

/**
 * Bundles the functions into `outDir` (`<root>/dist` by default); throws BuildError (code
 * `missing_source`) unless `allowMissing`.
 */
export async function buildFunctions(options: {
  root: string;
  outDir?: string;
  allowMissing?: boolean;
}): Promise<{
  built: BuiltFunction[];
  missing: FunctionEntry[];
}> {
  const { root } = options;
  const dist = options.outDir ?? path.join(root, "dist");
  const entries = functionEntries(await readFile(path.join(root, "serverless.yml"), "utf8"), root, dist);
  const missing = entries.filter((entry) => !existsSync(entry.source));
  if (missing.length > 0 && !options.allowMissing) {
    const list = missing.map((entry) => `${entry.name} (${path.relative(root, entry.source)})`).join(", ");
    throw new BuildError("missing_source", `serverless.yml names functions whose source is missing: ${list}`);
  }
  const present = entries.filter((entry) => !missing.includes(entry));
  const metaDir = path.join(dist, "meta");
  await mkdir(metaDir, { recursive: true });
  const built = await Promise.all(present.map((entry) => bundle(entry, metaDir)));
  // The dashboard's page is served by the API function: its script goes beside that bundle
  // (after it, as bundling a function first empties its directory).
  const api = built.find((fn) => fn.name === "api");
  if (api) await writeFile(path.join(path.dirname(api.outfile), DASHBOARD_FILE), await bundleDashboard(root));
  return { built, missing };
}

async function bundle(entry: FunctionEntry, metaDir: string): Promise<BuiltFunction> {
  // A stale file from an earlier build must not end up in the zip.
  await rm(path.dirname(entry.outfile), { recursive: true, force: true });
  const result = await build({
    entryPoints: [entry.source],
    outdir: path.dirname(entry.outfile),
    entryNames: "index",
    chunkNames: "[name]-[hash]",
    outExtension: { ".js": ".mjs" },
    // What is imported with `await import()` goes to chunks loaded when that code runs.
    splitting: true,
    bundle: true,
    platform: "node",
    // Runs on Lambda's nodejs24.x and on the Node 24 the project brings for the local stack and tests.
    target: "node24",
    format: "esm",
    // ES module builds first: they tree-shake (the AWS SDK, Powertools).
    mainFields: ["module", "main"],
    // CommonJS dependencies call require() for Node built-ins, which an ES module lacks.
    banner: {
      js: 'import { createRequire as __movaCreateRequire } from "node:module"; const require = __movaCreateRequire(import.meta.url);',
    },
    minify: true,
    // Stack traces point at the TypeScript (NODE_OPTIONS=--enable-source-maps in serverless.yml).
    sourcemap: true,
    // Stack traces need the mappings only; without the sources the map loads faster at cold start.
    sourcesContent: false,
    treeShaking: true,
    metafile: true,
    legalComments: "linked",
    logLevel: "warning",
  });
  const output = outputOf(result.metafile, entry);
  if (!output.exports.includes("handler")) {
    throw new BuildError(
      "no_handler_export",
      `function ${entry.name}: ${path.basename(entry.source)} does not export "handler"`,
    );
  }
  const metafile = path.join(metaDir, `${entry.bundleName}.json`);
  await writeFile(metafile, JSON.stringify(result.metafile));
  const javascript = Object.keys(result.metafile.outputs).filter((file) => file.endsWith(".mjs"));
  const sizeOf = (files: Iterable<string>) =>
    [...files].reduce((sum, file) => sum + result.metafile.outputs[file]!.bytes, 0);
  const entryKey = javascript.find((file) => path.resolve(file) === entry.outfile)!;
  return {
    ...entry,
    bytes: sizeOf(javascript),
    startupBytes: sizeOf(staticallyLoaded(result.metafile, entryKey)),
    files: [entryKey, ...javascript.filter((file) => file !== entryKey).sort()].map((file) =>
      path.resolve(file),
    ),
    metafile,
  };
}

/** The metafile names outputs relative to the working directory. */
function outputOf(metafile: Metafile, entry: FunctionEntry): Metafile["outputs"][string] {
  const key = Object.keys(metafile.outputs).find((file) => path.resolve(file) === entry.outfile);
  if (!key) throw new BuildError("no_output", `function ${entry.name}: esbuild wrote no ${entry.outfile}`);
  return metafile.outputs[key]!;
}

/** The output files that importing `entry` loads: itself and its static imports, transitively. */
export function staticallyLoaded(metafile: Metafile, entry: string): Set<string> {
  const loaded = new Set<string>();
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (loaded.has(file)) continue;
    loaded.add(file);
    for (const imported of metafile.outputs[file]?.imports ?? []) {
      if (imported.kind === "import-statement" && imported.path in metafile.outputs)
        pending.push(imported.path);
    }
  }
  return loaded;
}

/**
 * An environment under which a bundle imports, and its handler starts, without reaching
 * anything: every endpoint on a closed loopback port (a connection attempted would fail, and
 * show), static credentials, no LLM key. For the cold-start benchmark and the bundle tests.
 */
export function offlineFunctionEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "offline",
    AWS_SECRET_ACCESS_KEY: "offline",
    AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9",
    AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:9",
    ANALYSIS_QUEUE_URL: "http://127.0.0.1:9/000000000000/analysis",
    ANALYSIS_PRIORITY_QUEUE_URL: "http://127.0.0.1:9/000000000000/analysis-priority",
    ANALYSIS_RUN_QUEUE_URL: "http://127.0.0.1:9/000000000000/analysis-runs",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9",
    UPSTASH_REDIS_REST_TOKEN: "offline",
    MOVA_API_KEYS: "offline:0000000000000000000000000000000000000000000000000000000000000000",
    LOG_LEVEL: "ERROR",
    POWERTOOLS_METRICS_DISABLED: "true",
    AWS_LAMBDA_FUNCTION_NAME: "offline",
    ...overrides,
  };
}

async function main(argv: string[]): Promise<void> {
  const unknown = argv.filter((arg) => arg !== "--allow-missing");
  if (unknown.length > 0) {
    throw new BuildError(
      "bad_arguments",
      `unknown arguments: ${unknown.join(" ")} (usage: build.ts [--allow-missing])`,
    );
  }
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const started = performance.now();
  const { built, missing } = await buildFunctions({ root, allowMissing: argv.includes("--allow-missing") });
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  for (const fn of built) {
    console.log(
      `built ${fn.name.padEnd(14)} ${path.relative(root, fn.outfile)}  ${kib(fn.bytes)} in ${fn.files.length} file(s), ${kib(fn.startupBytes)} loaded at import`,
    );
  }
  for (const fn of missing) {
    console.warn(`SKIPPED ${fn.name}: ${path.relative(root, fn.source)} does not exist (--allow-missing)`);
  }
  console.log(`built ${built.length} function(s) in ${Math.round(performance.now() - started)} ms`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    const code = error instanceof BuildError ? ` [${error.code}]` : "";
    console.error(`build failed${code}: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
