/** `mova` on documents in the specification's classes form: validate, parse, dry run, runs. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunResult } from "../../lib/core/run.ts";
import type { MovaDocument } from "../../lib/mova/schema.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";
import { type HttpDouble, startHttpDouble } from "../support/http-double.ts";
import { json, mova } from "./spawn-mova.ts";

const PIZZA = "examples/pizza-order-classes.json";

let dir: string;
let pizzeria: HttpDouble;
let llm: FakeOpenAi;
let greeting: string;
let twoProtocols: string;
let menu = { price: 20, available: true };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mova-classes-"));
  greeting = join(dir, "greeting.json");
  await writeFile(
    greeting,
    JSON.stringify({
      version: "2.2",
      classes: {
        session: { data: { user_name: "Олена", budget: 50 } },
        protocol: {
          name: "greet",
          steps: [
            {
              id: "check",
              action: "condition",
              conditions: {
                logic: "OR",
                rules: [
                  {
                    variable: "session.data.budget * 2",
                    operator: "greater_than",
                    value: 90,
                    next_step_id: "rich",
                  },
                  { variable: "session.data.user_name", operator: "equals", value: "nobody" },
                ],
                default_next_step_id: "modest",
              },
            },
            { id: "rich", action: "end", response_template: "Welcome, {session.data.user_name} VIP" },
            { id: "modest", action: "end", response_template: "Hello, {session.data.user_name}" },
          ],
        },
      },
    }),
  );
  twoProtocols = join(dir, "two.json");
  const end = [{ id: "e", action: "end" }];
  await writeFile(
    twoProtocols,
    JSON.stringify({
      version: "2.2",
      classes: {
        protocol: [
          { name: "first", steps: end },
          { name: "second", steps: end },
        ],
      },
    }),
  );
  pizzeria = await startHttpDouble();
  pizzeria.route("GET", "/menu/large", () => ({ body: { data: menu } }));
  pizzeria.route("GET", "/menu/small", () => ({ body: { price: 8, available: false } }));
  pizzeria.route("POST", "/orders", () => ({ status: 201, body: { order_id: "A-17" } }));
  llm = await startFakeOpenAi();
});

beforeEach(() => {
  menu = { price: 20, available: true };
  pizzeria.requests.length = 0;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await pizzeria.close();
  await llm.close();
});

const toolEnv = () => ({ TOOL_ALLOW_HOSTS: "127.0.0.1" });
const pizzaRun = (...flags: string[]) => [
  "run",
  PIZZA,
  "--session-data",
  JSON.stringify({
    user_name: "Ada",
    size: "large",
    phone: "+44 20 7946 0000",
    budget: 30,
    pizzeria_url: pizzeria.url,
  }),
  "--json",
  ...flags,
];

// Each test spawns `mova` several times: on a loaded 2-core machine that can outlast the default 30 s.
describe("mova on the classes form", { timeout: 90_000 }, () => {
  it("validate says which form it read, per document", async () => {
    const run = await mova(["validate", PIZZA, "examples/support-form.json"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `${PIZZA}: valid (0 warnings; the specification's classes form, read into sections`,
    );
    expect(run.stdout).toContain("examples/support-form.json: valid (0 warnings; sections form)");
    const machine = await mova(["validate", PIZZA, "--json"]);
    expect(json<Array<{ form: string }>>(machine)[0]?.form).toBe("classes");
  });

  it("parse prints the normalised sections form", async () => {
    const run = await mova(["parse", PIZZA]);
    expect(run.code).toBe(0);
    const document = json<MovaDocument & { classes?: unknown }>(run);
    expect(document.classes).toBeUndefined();
    expect(document.protocols.map((p) => p.name)).toEqual(["pizza_order"]);
    expect(document.protocols[0]?.flow).toBe("explicit");
    expect(document.tools.map((t) => [t.id, t.method])).toEqual([
      ["menu_api", "GET"],
      ["order_api", "POST"],
    ]);
    expect(document.tools[1]?.parameters).toMatchObject({ customer: "{session.data.user_name}" });
    expect(document.instructions[0]?.content).toMatch(/Pizzeria Aurora/);
    // error_handling became each callable step's retry and on_error.
    expect(document.protocols[0]?.steps[0]).toMatchObject({
      retry: { attempts: 3, backoff_ms: 200 },
      on_error: "apologise",
      next_step: "decide",
    });
    expect(document.session?.data).toMatchObject({ user_name: "Ada", budget: 30 });
  });

  it("runs the only protocol without --protocol, and lists them when there are several", async () => {
    const several = await mova(["run", twoProtocols]);
    expect(several.code).toBe(2);
    expect(several.stderr).toContain(
      "the document has 2 protocols; choose one with --protocol: first, second",
    );
    const chosen = await mova(["run", twoProtocols, "-p", "second", "--json"]);
    expect(chosen.code).toBe(0);
    expect(json<RunResult>(chosen).protocol).toBe("second");
  });

  it("runs offline with the session class's data, or with --session-data (inline or @file)", async () => {
    const defaults = await mova(["run", greeting, "--json"]);
    expect(defaults.code).toBe(0);
    expect(json<RunResult>(defaults).output).toBe("Welcome, Олена VIP");
    expect(json<RunResult>(defaults).path).toEqual(["check", "rich"]);

    const given = await mova(["run", greeting, "--session-data", '{"budget": 10}', "--json"]);
    // The session data given wins key by key; the class's other keys stay.
    expect(json<RunResult>(given).output).toBe("Hello, Олена");

    const file = join(dir, "session.json");
    await writeFile(file, JSON.stringify({ user_name: "Ada", budget: 100 }));
    const fromFile = await mova(["run", greeting, "--session-data", `@${file}`, "--json"]);
    expect(json<RunResult>(fromFile).output).toBe("Welcome, Ada VIP");
  });

  it("refuses --session-data and --profile that are not JSON objects (exit 2)", async () => {
    const notJson = await mova(["run", greeting, "--session-data", "{oops"]);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain("--session-data: not JSON");
    const list = await mova(["run", greeting, "--profile", "[1]"]);
    expect(list.code).toBe(2);
    expect(list.stderr).toContain("--profile: expected a JSON object");
    const missing = await mova(["run", greeting, "--session-data", `@${join(dir, "nope.json")}`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("file not found");
  });

  it("dry-runs a classes document with session data, calling nothing", async () => {
    const run = await mova([...pizzaRun("--dry-run")]);
    expect(run.code).toBe(0);
    const plan = json<{ steps: Array<{ id: string; url?: string; branch?: string; assumed?: boolean }> }>(
      run,
    );
    expect(plan.steps[0]).toMatchObject({ id: "check_menu", url: `${pizzeria.url}/menu/large` });
    expect(plan.steps[1]).toMatchObject({ id: "decide", assumed: true });
    expect(pizzeria.requests).toEqual([]);
  });

  it("orders a pizza against the loopback pizzeria: rules, an expression, response_mapping, retries", async () => {
    // The menu answers 503 once: error_handling's retry_count tries again.
    pizzeria.queue("GET", "/menu/large", { status: 503, body: { error: "busy" } });
    const run = await mova(pizzaRun(), { env: toolEnv() });
    expect(run.code, run.stderr).toBe(0);
    const result = json<RunResult>(run);
    expect(result.path).toEqual(["check_menu", "decide", "place_order", "confirm", "done"]);
    expect(result.steps[0]).toMatchObject({ id: "check_menu", attempts: 2, status: "succeeded" });
    // response_mapping: the price came from the response's `data` object into the session data.
    expect(result.variables.session).toMatchObject({ price: 20, available: true, last_order: "A-17" });
    expect(result.variables.order_id).toBe("A-17");
    const order = pizzeria.requests.find((request) => request.method === "POST");
    expect(order?.json).toEqual({ customer: "Ada", size: "large", phone: "+44 20 7946 0000" });
    expect(result.output).toMatch(/^Order A-17 placed\. /);
    expect(result.output).toContain("for a large pizza at 20 is placed");
  });

  it("takes the rule's way when the expression says the budget is short, or the size is sold out", async () => {
    menu = { price: 28, available: true };
    const expensive = json<RunResult>(await mova(pizzaRun(), { env: toolEnv() }));
    // 30 - 28 * 1.1 < 0: no rule holds, the step's own next_step_id.
    expect(expensive.path).toEqual(["check_menu", "decide", "too_expensive"]);
    expect(expensive.output).toBe("A large pizza costs 28: with delivery it is over your budget of 30.");

    const soldOut = await mova(
      [
        "run",
        PIZZA,
        "--session-data",
        JSON.stringify({ size: "small", pizzeria_url: pizzeria.url }),
        "--json",
      ],
      { env: toolEnv() },
    );
    expect(json<RunResult>(soldOut).path).toEqual(["check_menu", "decide", "sold_out"]);
    expect(pizzeria.requests.some((request) => request.method === "POST")).toBe(false);
  });

  it("tests one condition step of the classes form alone, its rules' steps closed", async () => {
    // No price is known yet: the sold-out rule (available is not true) holds.
    const run = await mova(["test", PIZZA, "--step", "decide", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    // Without the rules' steps closed, the run would go on to `sold_out`, which the harness lacks.
    expect(json<{ error?: unknown }>(run).error).toBeUndefined();
    expect(json<{ step: { id: string; status: string; branch: string } }>(run).step).toMatchObject({
      id: "decide",
      status: "succeeded",
      branch: "then",
    });
  });

  it("gives the profile's language and tone to the prompt's system message", async () => {
    const run = await mova(
      pizzaRun("--profile", JSON.stringify({ preferences: { language: "Ukrainian", tone: "warm" } })),
      {
        env: { ...toolEnv(), LLM_API_KEY: "test-key", LLM_BASE_URL: llm.baseURL, LLM_MODEL: "fake-model" },
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const system = llm
      .completions()
      .at(-1)
      ?.messages.find((message) => message.role === "system")?.content;
    expect(system).toContain("Pizzeria Aurora");
    expect(system).toContain("Ukrainian");
    expect(system).toContain("warm");
  });
});
