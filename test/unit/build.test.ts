import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { BuildError, buildFunctions, functionEntries } from "../../scripts/build.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

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
