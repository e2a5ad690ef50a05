import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../../lib/core/run.ts";
import { type HttpDouble, startHttpDouble } from "../support/http-double.ts";
import { json, mova } from "./spawn-mova.ts";

const LOOKUP = "examples/parallel-lookup.json";
const FORM = "examples/support-form.json";

let api: HttpDouble;
let dir: string;

beforeAll(async () => {
  api = await startHttpDouble();
  api.route("GET", "/users/42", { body: { name: "Ada Lovelace", email: "ada@example.com" } });
  api.route("GET", "/users/7", { status: 404, body: { error: "no such user" } });
  dir = await mkdtemp(join(tmpdir(), "mova-cli-init-"));
});

afterAll(async () => {
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

describe("mova test", () => {
  it("--tool calls one tool with the variables and prints its status and body", async () => {
    const env = { TOOL_ALLOW_HOSTS: "127.0.0.1" };
    const ok = await mova(
      [
        "test",
        LOOKUP,
        "--tool",
        "users_api",
        "--var",
        "user_id=42",
        "--var",
        `api_base=${api.url}`,
        "--json",
      ],
      { env },
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(json(ok)).toMatchObject({
      tool: "users_api",
      status: "succeeded",
      httpStatus: 200,
      body: { name: "Ada Lovelace", email: "ada@example.com" },
    });
    expect(api.requests.map((request) => request.path)).toEqual(["/users/42"]);

    const missing = await mova(
      ["test", LOOKUP, "--tool", "users_api", "--var", "user_id=7", "--var", `api_base=${api.url}`],
      { env },
    );
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain("users_api: HTTP 404");
    expect(api.requests.map((request) => request.path)).toEqual(["/users/42", "/users/7"]);

    const dry = await mova(
      [
        "test",
        LOOKUP,
        "--tool",
        "orders_api",
        "--var",
        "user_id=42",
        "--var",
        `api_base=${api.url}`,
        "--dry-run",
      ],
      { env },
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`GET ${api.url}/orders?user=42&limit=5`);
    expect(api.requests).toHaveLength(2);
  });

  it("--step runs one step alone with the variables and prints its record", async () => {
    const valid = await mova([
      "test",
      FORM,
      "--step",
      "check_email",
      "--var",
      "email=ada@example.com",
      "--json",
    ]);
    expect(valid.code, valid.stderr).toBe(0);
    expect(json<{ step: { id: string; branch: string } }>(valid).step).toMatchObject({
      id: "check_email",
      branch: "then",
    });

    const invalid = await mova(["test", FORM, "--step", "check_email", "--var", "email=nope"]);
    expect(invalid.code).toBe(0);
    expect(invalid.stdout).toMatch(/check_email \(condition\) \(\d+ ms, branch else\)/);

    const unknown = await mova(["test", FORM, "--step", "nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no step "nope"');
    const neither = await mova(["test", FORM]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain("exactly one of --step <id> or --tool <id>");
  });
});

describe("mova init", () => {
  it("writes a document that validates and runs offline, and refuses to overwrite it", async () => {
    const target = join(dir, "project");
    const init = await mova(["init", target]);
    expect(init.code, init.stderr).toBe(0);
    const file = join(target, "mova.json");
    expect(init.stdout).toContain(`wrote ${file}`);
    const written = await readFile(file, "utf8");

    const validate = await mova(["validate", file, "--json"]);
    expect(validate.code).toBe(0);
    expect(json<Array<{ valid: boolean; warnings: unknown[] }>>(validate)[0]).toMatchObject({
      valid: true,
      warnings: [],
    });

    const run = await mova(["run", file, "--protocol", "greet", "--answer", "Ada", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const result = json<RunResult>(run);
    expect(result).toMatchObject({ status: "completed", offline: true });
    expect(result.output).toContain("Write a one-line friendly greeting for Ada.");

    const edited = written.replace("What is your name?", "Who are you?");
    await writeFile(file, edited);
    const again = await mova(["init", target]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`${file}: already exists; not overwriting it`);
    expect(await readFile(file, "utf8")).toBe(edited);
  });
});
