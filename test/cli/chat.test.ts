import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChatTurn } from "../../lib/cli/commands/chat.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";
import { type HttpDouble, startHttpDouble } from "../support/http-double.ts";
import { mova } from "./spawn-mova.ts";

const FORM = "examples/support-form.json";

function turns(stdout: string): ChatTurn[] {
  return stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as ChatTurn);
}

let llm: FakeOpenAi;
let weather: HttpDouble;

beforeAll(async () => {
  weather = await startHttpDouble();
  weather.route("GET", "/v1/current.json", (request) => ({
    body: { location: { name: request.query.q }, current: { temp_c: 31, condition: { text: "Сонячно" } } },
  }));
  llm = await startFakeOpenAi();
  // As a classifier (a system message listing the intents) it names one; otherwise it echoes.
  llm.answerWith((request) => {
    const system = request.messages.find((message) => message.role === "system")?.content ?? "";
    const user = request.messages.findLast((message) => message.role === "user")?.content ?? "";
    if (system.includes("support_request") && /broken/.test(user)) return "support_request";
    if (system.includes("support_request")) return "none";
    return `summary of: ${user}`;
  });
});

afterAll(async () => {
  await weather.close();
  await llm.close();
});

describe("mova chat", () => {
  it("recognises intents and starts, re-asks and resumes the form across piped lines (offline)", async () => {
    const input = [
      "hello",
      "what is this",
      "I need support",
      "Ada",
      "not-an-email",
      "ada@example.com",
      "",
      "My invoice is wrong",
      "привіт",
    ].join("\n");
    const run = await mova(["chat", FORM, "--json"], { stdin: `${input}\n` });
    expect(run.code, run.stderr).toBe(0);
    const conversation = turns(run.stdout);
    expect(conversation.map((turn) => [turn.message, turn.intent, turn.status ?? null])).toEqual([
      ["hello", "greeting", null],
      ["what is this", null, null],
      ["I need support", "support_request", "waiting_input"],
      ["Ada", null, "waiting_input"],
      ["not-an-email", null, "waiting_input"],
      ["ada@example.com", null, "waiting_input"],
      ["My invoice is wrong", null, "completed"],
      ["привіт", "greeting", null],
    ]);
    expect(conversation[0]?.replies).toEqual(['Hello! Type "support" to open a support request.']);
    expect(conversation[1]?.error?.code).toBe("no_intent");
    expect(conversation[2]?.replies).toEqual(["What is your name?"]);
    expect(conversation[3]?.replies).toEqual(["Thanks, Ada. What is your email address?"]);
    expect(conversation[4]?.replies[0]).toContain('"not-an-email" does not look like an email address');
    expect(conversation[5]?.replies).toEqual(["How can we help?"]);
    expect(conversation[6]?.replies.at(-1)).toMatch(/^Thank you, Ada\. We will answer at ada@example\.com\./);
    expect(run.stderr.match(/no LLM configured/g)).toHaveLength(1);
  });

  it("prints plain replies, falls back to the LLM for intents, and ends at EOF while a run waits", async () => {
    const run = await mova(["chat", FORM], {
      stdin: "my laptop is broken\nGrace\ngrace@example.org\nIt does not boot\nhi\nsupport\n",
      env: { LLM_API_KEY: "test-key", LLM_BASE_URL: llm.baseURL },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split("\n")).toEqual([
      "What is your name?",
      "Thanks, Grace. What is your email address?",
      "How can we help?",
      "summary of: Summarise this support request from Grace <grace@example.org>: It does not boot",
      "Thank you, Grace. We will answer at grace@example.org. Summary: summary of: Summarise this support request from Grace <grace@example.org>: It does not boot",
      'Hello! Type "support" to open a support request.',
      "What is your name?",
      "",
    ]);
    expect(run.stderr).toContain("conversation ended while support_form waited for input");
    expect(run.stderr).not.toContain("no LLM configured");
  });

  it("starts the 2.2 weather protocol from a Ukrainian message, with --var given to the run", async () => {
    const run = await mova(
      [
        "chat",
        "examples/weather-2.2.json",
        "--var",
        "city=Київ",
        "--var",
        `weather_api_base=${weather.url}`,
        "--json",
      ],
      { stdin: "Яка погода сьогодні?\n", env: { TOOL_ALLOW_HOSTS: "127.0.0.1" } },
    );
    expect(run.code, run.stderr).toBe(0);
    const [turn] = turns(run.stdout);
    expect(turn).toMatchObject({
      intent: "weather_inquiry",
      via: "pattern",
      protocol: "weather_protocol",
      status: "completed",
    });
    expect(turn?.replies.at(-1)).toContain("Київ, 31°C, Сонячно");
    expect(weather.requests.map((request) => request.query.q)).toEqual(["Київ"]);
  });
});
