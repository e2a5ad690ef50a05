import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import type { Metafile } from "esbuild";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createApiHandler } from "../../lib/http/handler.ts";
import { buildApiDeps } from "../../lib/wiring/api.ts";
import { loadConfig } from "../../lib/config.ts";
import {
  BuildError,
  type BuiltFunction,
  buildFunctions,
  DASHBOARD_FILE,
  functionEntries,
  offlineFunctionEnv,
} from "../../scripts/build.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const run = promisify(execFile);

/**
 * The source files (relative to the working directory) with code in the given outputs (all by
 * default). The metafile's `inputs` also list what was parsed and then tree-shaken away.
 */
function bundled(meta: Metafile, outputs: Iterable<string> = Object.keys(meta.outputs)): string[] {
  const files = new Set<string>();
  for (const output of outputs) {
    for (const [file, { bytesInOutput }] of Object.entries(meta.outputs[output]!.inputs)) {
      if (bytesInOutput > 0) files.add(file);
    }
  }
  return [...files];
}

/** The files of a package that have code in the bundle. */
function packageInputs(meta: Metafile, pkg: string): string[] {
  return bundled(meta).filter((file) => file.includes(`node_modules/${pkg}/`));
}

describe("functionEntries", () => {
  it("maps each function in serverless.yml to functions/<name>.ts and dist/<name>/index.mjs", async () => {
    const entries = functionEntries(await readFile(path.join(root, "serverless.yml"), "utf8"), root);
    expect(
      entries.map(({ name, source, outfile }) => [
        name,
        path.relative(root, source),
        path.relative(root, outfile),
      ]),
    ).toEqual([
      ["api", "functions/api.ts", "dist/api/index.mjs"],
      ["analyze", "functions/analyze.ts", "dist/analyze/index.mjs"],
      ["batchAnalysis", "functions/batch-analysis.ts", "dist/batch-analysis/index.mjs"],
      ["trigger", "functions/trigger.ts", "dist/trigger/index.mjs"],
      ["runner", "functions/runner.ts", "dist/runner/index.mjs"],
      ["sweep", "functions/sweep.ts", "dist/sweep/index.mjs"],
      ["stream", "functions/stream.ts", "dist/stream/index.mjs"],
    ]);
  });

  it.each([
    ["handler outside dist", "functions:\n  api:\n    handler: functions/api.handler\n"],
    ["other export name", "functions:\n  api:\n    handler: dist/api/index.main\n"],
    ["path escaping dist", "functions:\n  api:\n    handler: dist/../api/index.handler\n"],
    ["no handler", "functions:\n  api:\n    memorySize: 128\n"],
  ])("rejects a %s with code bad_handler", (_label, yaml) => {
    expect(() => functionEntries(yaml, root)).toThrow(expect.objectContaining({ code: "bad_handler" }));
  });

  it("rejects a configuration without functions", () => {
    expect(() => functionEntries("service: x\n", root)).toThrow(
      expect.objectContaining({ code: "no_functions" }),
    );
  });
});

describe("buildFunctions", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function project(files: Record<string, string>): Promise<string> {
    dir = await mkdtemp(path.join(tmpdir(), "mova-build-"));
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), text);
    }
    return dir;
  }

  const twoFunctions =
    "functions:\n  one:\n    handler: dist/one/index.handler\n  two:\n    handler: dist/two/index.handler\n";

  it("fails naming every missing source, and writes nothing", async () => {
    const at = await project({ "serverless.yml": twoFunctions });
    const error = await buildFunctions({ root: at }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).code).toBe("missing_source");
    expect((error as BuildError).message).toContain("one (functions/one.ts), two (functions/two.ts)");
    expect(existsSync(path.join(at, "dist"))).toBe(false);
  });

  it("with allowMissing, bundles what exists into a module exporting handler", async () => {
    const at = await project({
      "serverless.yml": twoFunctions,
      "functions/one.ts":
        'import { join } from "node:path";\nexport const handler = async () => join("a", "b");\n',
    });
    const { built, missing } = await buildFunctions({ root: at, allowMissing: true });
    expect(missing.map((fn) => fn.name)).toEqual(["two"]);
    expect(built.map((fn) => fn.name)).toEqual(["one"]);
    const bundle = (await import(path.join(at, "dist/one/index.mjs"))) as { handler: () => Promise<string> };
    expect(await bundle.handler()).toBe(path.join("a", "b"));
    const meta = JSON.parse(await readFile(path.join(at, "dist/meta/one.json"), "utf8")) as {
      inputs: object;
    };
    expect(Object.keys(meta.inputs)).toContain(
      path.relative(process.cwd(), path.join(at, "functions/one.ts")),
    );
  });

  it("fails when a source does not export handler", async () => {
    const at = await project({
      "serverless.yml": "functions:\n  one:\n    handler: dist/one/index.handler\n",
      "functions/one.ts": "export const main = () => 1;\n",
    });
    await expect(buildFunctions({ root: at })).rejects.toMatchObject({ code: "no_handler_export" });
  });
});

describe("buildFunctions: zod", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('bundles `import * as z from "zod"` (the sources\' form) with only the zod code used, messages in English', async () => {
    dir = await mkdtemp(path.join(tmpdir(), "mova-build-zod-"));
    await symlink(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir");
    await mkdir(path.join(dir, "functions"));
    await writeFile(
      path.join(dir, "serverless.yml"),
      "functions:\n  one:\n    handler: dist/one/index.handler\n",
    );
    await writeFile(
      path.join(dir, "functions/one.ts"),
      [
        'import * as z from "zod";',
        "const Body = z.object({ name: z.string().min(2), count: z.number().int().optional() });",
        "export const handler = async (input: unknown) => {",
        "  const parsed = Body.safeParse(input);",
        "  return parsed.success ? [] : parsed.error.issues.map((issue) => issue.message);",
        "};",
        "",
      ].join("\n"),
    );
    const { built } = await buildFunctions({ root: dir });
    const bundle = (await import(pathToFileURL(built[0]!.outfile).href)) as {
      handler: (input: unknown) => Promise<string[]>;
    };
    expect(await bundle.handler({ name: "ok" })).toEqual([]);
    expect(await bundle.handler({ name: 1, count: 1.5 })).toEqual([
      "Invalid input: expected string, received number",
      "Invalid input: expected int, received number",
    ]);
    expect(await bundle.handler({ name: "a" })).toEqual([
      "Too small: expected string to have >=2 characters",
    ]);

    const meta = JSON.parse(await readFile(built[0]!.metafile, "utf8")) as Metafile;
    const zod = packageInputs(meta, "zod");
    expect(zod.filter((file) => file.includes("/locales/"))).toEqual(["node_modules/zod/v4/locales/en.js"]);
    // Neither the JSON Schema importer nor the compiler: z.fromJSONSchema and z.compile are not called.
    expect(zod.filter((file) => /from-json-schema|\/compile\.js$/.test(file))).toEqual([]);
  }, 30_000);
});

/** Nothing reachable at import time: endpoints on a closed port, static credentials. */
const API_KEY = "build-test-key";
const OFFLINE_ENV = offlineFunctionEnv({
  MOVA_API_KEYS: `test:${createHash("sha256").update(API_KEY).digest("hex")}`,
  LOG_LEVEL: "CRITICAL",
  AWS_LAMBDA_FUNCTION_NAME: "build-test",
});

/**
 * Imports a bundle in a fresh `node` (as Lambda does: plain ESM, no loader) and calls its
 * handler with each event; a handler's throw is answered as `{ thrown: message }`.
 */
const INVOKE_CHILD = `
const [bundle, events] = process.argv.slice(1);
const { handler } = await import(bundle);
const answers = [];
for (const event of JSON.parse(events)) {
  try {
    answers.push(await handler(event, { awsRequestId: "build-test", getRemainingTimeInMillis: () => 30000 }));
  } catch (error) {
    answers.push({ thrown: error.message });
  }
}
process.stdout.write("\\n" + JSON.stringify(answers) + "\\n");
process.exit(0);
`;

/** An HTTP API (payload 2.0) event as API Gateway sends it. */
function v2Event(
  method: string,
  rawPath: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): APIGatewayProxyEventV2 {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString: "",
    headers: {
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...options.headers,
    },
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "api.example.com",
      domainPrefix: "api",
      http: { method, path: rawPath, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "vitest" },
      requestId: "build-test",
      routeKey: "$default",
      stage: "$default",
      time: "23/Nov/2026:00:00:00 +0000",
      timeEpoch: 0,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    isBase64Encoded: false,
  };
}

async function invokeBundle(bundle: string, events: unknown[]): Promise<unknown[]> {
  const { stdout } = await run(
    process.execPath,
    ["--input-type=module", "-e", INVOKE_CHILD, pathToFileURL(bundle).href, JSON.stringify(events)],
    { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...OFFLINE_ENV }, timeout: 30_000 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as unknown[];
}

describe("the project's bundles", () => {
  let outDir: string;
  let built: BuiltFunction[];
  const fn = (name: string) => built.find((b) => b.name === name)!;

  beforeAll(async () => {
    outDir = await mkdtemp(path.join(tmpdir(), "mova-build-dist-"));
    ({ built } = await buildFunctions({ root, outDir }));
  }, 60_000);
  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("hold none of zod's locales but English, nor its JSON Schema importer", async () => {
    for (const { name, metafile } of built) {
      const zod = packageInputs(JSON.parse(await readFile(metafile, "utf8")) as Metafile, "zod");
      expect(zod.length, name).toBeGreaterThan(0);
      expect(
        zod.filter((file) => file.includes("/locales/") && !file.endsWith("/en.js")),
        name,
      ).toEqual([]);
      expect(
        zod.filter((file) => file.includes("from-json-schema")),
        name,
      ).toEqual([]);
    }
  });

  it("load the AWS SDK's other credential providers only when the environment's are missing", async () => {
    for (const { name, metafile, outfile, startupBytes, bytes } of built) {
      const meta = JSON.parse(await readFile(metafile, "utf8")) as Metafile;
      const entry = Object.keys(meta.outputs).find((file) => path.resolve(file) === outfile)!;
      const atImport = new Set<string>([entry]);
      for (const file of atImport) {
        for (const imported of meta.outputs[file]!.imports) {
          if (imported.kind === "import-statement" && imported.path in meta.outputs)
            atImport.add(imported.path);
        }
      }
      const loadedInputs = bundled(meta, atImport);
      expect(
        loadedInputs.some((input) => input.includes("@aws-sdk/credential-provider-env/")),
        name,
      ).toBe(true);
      for (const lazy of ["credential-provider-ini", "credential-provider-sso", "nested-clients"]) {
        expect(
          loadedInputs.filter((input) => input.includes(`@aws-sdk/${lazy}/`)),
          `${name}: ${lazy}`,
        ).toEqual([]);
        expect(
          bundled(meta).some((input) => input.includes(`@aws-sdk/${lazy}/`)),
          `${name} ships ${lazy}`,
        ).toBe(true);
      }
      expect(startupBytes, name).toBeLessThan(bytes);
    }
  });

  it("api: answers as the handler built from the sources does (zod's English messages, the OpenAPI document)", async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    const events = [
      v2Event("GET", "/openapi.json"),
      v2Event("POST", "/executions", { body: { document: 7, protocol: "" }, headers: auth }),
      v2Event("POST", "/executions", { body: { document: "doc", protocol: "p", extra: 1 }, headers: auth }),
      v2Event("GET", "/documents", { headers: {} }),
    ];
    const fromBundle = (await invokeBundle(fn("api").outfile, events)) as Array<{
      statusCode: number;
      body: string;
    }>;
    const config = loadConfig({ ...OFFLINE_ENV });
    const fromSources = createApiHandler(
      buildApiDeps(config, { env: OFFLINE_ENV, sessionBackend: "memory" }),
    );
    const expected = [];
    for (const event of events) expected.push(await fromSources(event, {} as never));

    const bodies = (answers: Array<{ statusCode?: number; body?: string }>) =>
      answers.map((answer) => ({
        status: answer.statusCode,
        body: JSON.parse(answer.body ?? "null") as unknown,
      }));
    expect(bodies(fromBundle)).toEqual(bodies(expected));
    type ErrorBody = { error: { code: string; details: unknown[] } };
    const [openApi, invalid, strict] = bodies(fromBundle) as [
      { status: number; body: { paths: object } },
      { status: number; body: ErrorBody },
      { status: number; body: ErrorBody },
    ];
    expect(openApi.status).toBe(200);
    expect(Object.keys(openApi.body.paths)).toContain("/executions");
    expect(invalid).toMatchObject({ status: 400, body: { error: { code: "invalid_request" } } });
    expect(invalid.body.error.details).toContainEqual({
      path: "document",
      message: "Invalid input: expected string, received number",
    });
    expect(strict.body.error.details).toContainEqual({ path: "", message: 'Unrecognized key: "extra"' });
  }, 30_000);

  it("api: serves the dashboard's page and the script written beside its bundle", async () => {
    const script = await readFile(path.join(path.dirname(fn("api").outfile), DASHBOARD_FILE), "utf8");
    expect(script.length).toBeGreaterThan(1000);
    const [page, served] = (await invokeBundle(fn("api").outfile, [
      v2Event("GET", "/dashboard"),
      v2Event("GET", "/dashboard/app.js"),
    ])) as Array<{ statusCode: number; headers: Record<string, string>; body: string }>;
    expect(page!.statusCode).toBe(200);
    expect(page!.body).toContain('src="dashboard/app.js"');
    expect(served!.statusCode).toBe(200);
    expect(served!.headers["content-type"]).toMatch(/^text\/javascript/);
    expect(served!.body).toBe(script);
  }, 30_000);

  it("trigger: rejects an invalid run request with zod's English message", async () => {
    const [answer] = await invokeBundle(fn("trigger").outfile, [
      { "detail-type": "mova.run.requested", source: "test", id: "e1", detail: { tenant: "t", document: 5 } },
    ]);
    expect(answer).toEqual({
      thrown:
        "invalid run request: document: Invalid input: expected string, received number; protocol: Invalid input: expected string, received undefined",
    });
  }, 30_000);
});
