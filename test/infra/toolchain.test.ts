/**
 * The project's one Node: the tests run on the Node 24 that the project brings (the `node`
 * devDependency, which npm scripts and npx find first on their PATH, whatever Node the machine
 * has), and every place that names a Node version names the same one: package.json's engines,
 * .nvmrc, esbuild's target in scripts/build.ts and the Lambda runtime in serverless.yml.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const read = (file: string): string => readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");
const pkg = JSON.parse(read("package.json")) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const PINNED = pkg.devDependencies.node ?? "";
const MAJOR = 24;

describe("toolchain", () => {
  it("runs the tests on the Node 24 the project pins, not on the machine's own", () => {
    expect(PINNED).toMatch(/^\d+\.\d+\.\d+$/);
    expect(Number(process.versions.node.split(".")[0])).toBe(MAJOR);
    expect(process.versions.node).toBe(PINNED);
  });

  it("names Node 24 everywhere: engines, .nvmrc, esbuild's target, the Lambda runtime", () => {
    expect(pkg.engines.node).toMatch(new RegExp(`^\\^${MAJOR}\\.\\d+\\.\\d+$`));
    expect(read(".nvmrc").trim()).toBe(PINNED);
    expect([...read("scripts/build.ts").matchAll(/\btarget: "([^"]+)"/g)].map((m) => m[1])).toEqual([
      `node${MAJOR}`,
    ]);
    const serverless = parse(read("serverless.yml")) as { provider: { runtime: string } };
    expect(serverless.provider.runtime).toBe(`nodejs${MAJOR}.x`);
  });
});
