import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, mova } from "./spawn-mova.ts";

interface Report {
  file: string;
  valid: boolean;
  errors: Array<{ code: string; path: string; message: string }>;
  warnings: Array<{ code: string; path: string; message: string }>;
}

const EXAMPLES = ["examples/weather-2.2.json", "examples/support-form.json", "examples/parallel-lookup.json"];

let dir: string;
let broken: string;
let badJson: string;
let yamlDoc: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mova-cli-validate-"));
  broken = join(dir, "broken.json");
  await writeFile(
    broken,
    JSON.stringify({
      version: "2.2",
      protocols: [
        {
          name: "p",
          steps: [
            { id: "a", action: "prompt", prompt: "hi", next_step: "nowhere" },
            { id: "b", action: "end" },
          ],
        },
      ],
    }),
  );
  badJson = join(dir, "bad.json");
  await writeFile(badJson, '{\n  "version": "2.2",\n  "intents": [,]\n}\n');
  yamlDoc = join(dir, "doc.yaml");
  await writeFile(
    yamlDoc,
    "version: 2.2\nprotocols:\n  - name: hello\n    steps:\n      - id: say\n        action: prompt\n        prompt: Hello\n",
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("mova validate", () => {
  it("accepts every example and the YAML document, with the --json shape", async () => {
    const run = await mova(["validate", ...EXAMPLES, yamlDoc, "--json"]);
    expect(run.code).toBe(0);
    const reports = json<Report[]>(run);
    expect(reports.map((report) => report.file)).toEqual([...EXAMPLES, yamlDoc]);
    for (const report of reports) {
      expect(Object.keys(report).sort()).toEqual(["errors", "file", "form", "valid", "warnings"]);
      expect(report.valid, JSON.stringify(report.errors)).toBe(true);
      expect(report.errors).toEqual([]);
    }
  });

  it("exits 1 on an invalid document and points at the file and the JSON path", async () => {
    const human = await mova(["validate", "examples/support-form.json", broken]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain("examples/support-form.json: valid (");
    expect(human.stdout).toMatch(/broken\.json: invalid \(1 error/);
    expect(human.stdout).toContain(`${broken}: error [unknown_reference] $.protocols[0].steps[0].next_step:`);
    expect(human.stdout).not.toContain("\u001b[");

    const machine = await mova(["validate", broken, "--json"]);
    expect(machine.code).toBe(1);
    const [report] = json<Report[]>(machine);
    expect(report?.valid).toBe(false);
    expect(report?.errors).toContainEqual(
      expect.objectContaining({ code: "unknown_reference", path: "$.protocols[0].steps[0].next_step" }),
    );
  });

  it("exits 2 when a file is missing or malformed, naming the file, line and column", async () => {
    const missing = join(dir, "missing.json");
    const run = await mova(["validate", "examples/weather-2.2.json", missing, badJson, "--json"]);
    expect(run.code).toBe(2);
    const reports = json<Report[]>(run);
    expect(reports.map((report) => [report.valid, report.errors[0]?.code])).toEqual([
      [true, undefined],
      [false, "file_not_found"],
      [false, "parse_error"],
    ]);
    expect(reports[1]?.errors[0]?.message).toBe(`${missing}: file not found`);
    expect(reports[2]?.errors[0]?.message).toMatch(/bad\.json: parse error: .*line 3, column 15/);

    const human = await mova(["validate", badJson]);
    expect(human.code).toBe(2);
    expect(human.stderr).toMatch(/bad\.json: parse error: .*line 3, column 15/);
  });

  it("exits 2 on wrong usage and 0 on --help", async () => {
    const noFile = await mova(["validate"]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/missing required argument/);
    const unknown = await mova(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command/);
    const help = await mova(["run", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--protocol <name>");
    expect(help.stdout).toContain("Exit codes:");
  });
});

describe("mova parse", () => {
  it("prints the normalised document with defaults filled in, indented or compact", async () => {
    const pretty = await mova(["parse", "examples/support-form.json"]);
    expect(pretty.code).toBe(0);
    expect(pretty.stdout.split("\n").length).toBeGreaterThan(20);
    const document = JSON.parse(pretty.stdout);
    // Filled in: sections absent from the file, an intent's priority and type, a tool's method.
    expect(document.tools).toEqual([]);
    expect(document.contracts).toEqual([]);
    expect(document.intents[0]).toMatchObject({ name: "greeting", priority: 0, intent_type: "greeting" });
    expect(document.protocols[0].max_steps).toBe(60);

    const compact = await mova(["parse", yamlDoc, "--json"]);
    expect(compact.code).toBe(0);
    expect(compact.stdout.trim().split("\n")).toHaveLength(1);
    const fromYaml = json<{ version: string; protocols: Array<{ max_steps: number }> }>(compact);
    expect(fromYaml.version).toBe("2.2");
    expect(fromYaml.protocols[0]?.max_steps).toBe(200);

    const invalid = await mova(["parse", broken]);
    expect(invalid.code).toBe(1);
    expect(invalid.stdout).toBe("");
    expect(invalid.stderr).toContain("[unknown_reference] $.protocols[0].steps[0].next_step");
  });
});
