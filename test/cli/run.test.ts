import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../../lib/core/run.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";
import { type HttpDouble, startHttpDouble } from "../support/http-double.ts";
import { json, mova } from "./spawn-mova.ts";

const WEATHER = "examples/weather-2.2.json";
const FORM = "examples/support-form.json";
const LOOKUP = "examples/parallel-lookup.json";
const SECRET = "s3cret-weather-key";

let api: HttpDouble;
let llm: FakeOpenAi;
const arrivals: Record<string, number> = {};

beforeAll(async () => {
  api = await startHttpDouble();
  api.route("GET", "/v1/current.json", (request) => {
    if (request.query.q === "Atlantis") return { status: 500, body: { error: "upstream down" } };
    const temp = request.query.q === "Lviv" ? 12 : 30;
    return {
      body: { location: { name: request.query.q }, current: { temp_c: temp, condition: { text: "Sunny" } } },
    };
  });
  api.route("GET", "/users/42", () => {
    arrivals.user = Date.now();
    return { delayMs: 400, body: { name: "Ada Lovelace", email: "ada@example.com" } };
  });
  api.route("GET", "/orders", (request) => {
    arrivals.orders = Date.now();
    if (request.query.user !== "42") return { status: 404, body: { error: "no such user" } };
    return { delayMs: 400, body: { count: 2, items: [{ id: "o-2" }, { id: "o-1" }] } };
  });
  llm = await startFakeOpenAi();
});

afterAll(async () => {
  await api.close();
  await llm.close();
});

const toolEnv = { TOOL_ALLOW_HOSTS: "127.0.0.1", MOVA_SECRET_WEATHER_API_KEY: SECRET };
/** `mova run` of the weather example with `-p`, a city and the tool double as its API. */
const weatherRun = (city: string, ...flags: string[]) => [
  "run",
  WEATHER,
  "-p",
  "weather_protocol",
  "--var",
  `city=${city}`,
  "--var",
  `weather_api_base=${api.url}`,
  ...flags,
];
const weatherRequests = () => api.requests.filter((request) => request.path === "/v1/current.json");

describe("mova run", () => {
  it("runs the MOVA 2.2 weather example to completion, offline, with the secret sent and redacted", async () => {
    const run = await mova(
      [
        "run",
        WEATHER,
        "--protocol",
        "weather_protocol",
        "--var",
        "city=Kyiv",
        "--var",
        `weather_api_base=${api.url}`,
        "--json",
      ],
      { env: toolEnv },
    );
    expect(run.code, run.stderr).toBe(0);
    const result = json<RunResult>(run);
    expect(result.status).toBe("completed");
    expect(result.offline).toBe(true);
    expect(result.path).toEqual(["call_weather_api", "display_weather", "check_heat", "heat_advice", "end"]);
    expect(result.output).toEqual(expect.stringContaining("Kyiv, 30°C, Sunny"));
    expect(weatherRequests().at(-1)?.query).toEqual({ key: SECRET, q: "Kyiv", lang: "uk" });
    expect(run.stdout).not.toContain(SECRET);
    expect(run.stderr.match(/no LLM configured/g)).toHaveLength(1);
  });

  it("prints each step as it finishes and takes the else branch when it is not hot", async () => {
    const run = await mova(weatherRun("Lviv", "--step-by-step"), { env: toolEnv });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split("\n");
    const stepLines = lines.filter((line) => /^[✓✗-] /.test(line));
    expect(stepLines.map((line) => line.split(" ")[1])).toEqual([
      "call_weather_api",
      "display_weather",
      "check_heat",
      "end",
    ]);
    expect(stepLines[0]).toContain("HTTP 200");
    expect(stepLines[2]).toContain("branch else");
    expect(run.stdout).toContain("Lviv, 12°C, Sunny");
    expect(run.stderr).toMatch(/completed: weather_protocol, 4 steps/);
  });

  it("exits 1 when the tool keeps failing, after the step's retries", async () => {
    const before = weatherRequests().length;
    const run = await mova(weatherRun("Atlantis", "--json"), { env: toolEnv });
    expect(run.code).toBe(1);
    const result = json<RunResult>(run);
    expect(result.status).toBe("failed");
    expect(result.steps[0]).toMatchObject({
      id: "call_weather_api",
      status: "failed",
      attempts: 2,
      httpStatus: 500,
    });
    expect(weatherRequests().length - before).toBe(2);
  });

  it("refuses a loopback tool endpoint that TOOL_ALLOW_HOSTS does not list", async () => {
    const before = api.requests.length;
    const run = await mova(weatherRun("Kyiv", "--json"), { env: { MOVA_SECRET_WEATHER_API_KEY: SECRET } });
    expect(run.code).toBe(1);
    expect(json<RunResult>(run).steps[0]?.status).toBe("failed");
    expect(api.requests.length).toBe(before);
  });

  it("--dry-run calls nothing and exits 0", async () => {
    const before = api.requests.length;
    const run = await mova(weatherRun("Kyiv", "--dry-run", "--json"), { env: toolEnv });
    expect(run.code, run.stderr).toBe(0);
    const plan = JSON.stringify(json(run));
    expect(plan).toContain(`${api.url}/v1/current.json`);
    expect(plan).not.toContain(SECRET);
    expect(api.requests.length).toBe(before);
  });

  it("exits 2 on an unknown protocol or a malformed --var, naming what is wrong", async () => {
    const unknown = await mova(["run", FORM, "--protocol", "nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no protocol named "nope"; the document has: support_form');
    const badVar = await mova(["run", FORM, "--protocol", "support_form", "--var", "a.b=1"]);
    expect(badVar.code).toBe(2);
    expect(badVar.stderr).toContain('"a.b" is not a plain variable name');
    // Without --protocol the document's only protocol runs (here: up to its first input).
    const onlyProtocol = await mova(["run", FORM, "--json"]);
    expect(onlyProtocol.code).toBe(3);
    expect(json<RunResult>(onlyProtocol).protocol).toBe("support_form");
  });

  it("exits 3 when the form waits for input and no answer is left", async () => {
    const run = await mova(["run", FORM, "-p", "support_form", "--answer", "Ada", "--json"]);
    expect(run.code).toBe(3);
    const result = json<RunResult>(run);
    expect(result.status).toBe("waiting_input");
    expect(result.waitingFor).toMatchObject({ stepId: "ask_email", variable: "email" });
    expect(result.waitingFor?.prompt).toBe("Thanks, Ada. What is your email address?");
  });

  it("feeds the answers in order, re-asking until the email is valid, to completion", async () => {
    const run = await mova([
      "run",
      FORM,
      "-p",
      "support_form",
      "--answer",
      "Ada",
      "--answer",
      "not-an-email",
      "--answer",
      "ada@example.com",
      "--answer",
      "My invoice is wrong",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('"not-an-email" does not look like an email address');
    expect(run.stdout).toContain("Thank you, Ada. We will answer at ada@example.com.");
    expect(run.stderr).toMatch(/completed: support_form/);
  });

  it("answers prompts with the configured OpenAI-compatible LLM", async () => {
    const run = await mova(
      [
        "run",
        FORM,
        "-p",
        "support_form",
        "--answer",
        "Ada",
        "--answer",
        "ada@example.com",
        "--answer",
        "Broken login",
        "--json",
      ],
      { env: { LLM_API_KEY: "test-key", LLM_BASE_URL: llm.baseURL, LLM_MODEL: "fake-model" } },
    );
    expect(run.code, run.stderr).toBe(0);
    const result = json<RunResult>(run);
    expect(result.offline).toBe(false);
    expect(result.output).toBe(
      "Thank you, Ada. We will answer at ada@example.com. Summary: reply: Summarise this support request from Ada <ada@example.com>: Broken login",
    );
    expect(run.stderr).not.toContain("no LLM configured");
    const [request] = llm.completions();
    expect(request?.model).toBe("fake-model");
    expect(request?.messages[0]).toEqual({
      role: "system",
      content: "You triage support requests in one sentence.",
    });
  });

  it("runs both tool calls of the parallel example at the same time and combines them", async () => {
    const run = await mova(
      [
        "run",
        LOOKUP,
        "-p",
        "account_overview",
        "--var",
        "user_id=42",
        "--var",
        `api_base=${api.url}`,
        "--json",
      ],
      { env: { TOOL_ALLOW_HOSTS: "127.0.0.1" } },
    );
    expect(run.code, run.stderr).toBe(0);
    const result = json<RunResult>(run);
    expect(result.output).toBe("Ada Lovelace (ada@example.com) has 2 orders; the latest is o-2.");
    // Each API answers after 400 ms: the second request arrived before the first was answered.
    expect(Math.abs((arrivals.user ?? 0) - (arrivals.orders ?? Number.POSITIVE_INFINITY))).toBeLessThan(300);
    expect(api.requests.find((request) => request.path === "/orders")?.query).toEqual({
      user: "42",
      limit: "5",
    });
  });
});
