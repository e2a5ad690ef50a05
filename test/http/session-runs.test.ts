/**
 * A session's runs are durable on the local stack: a message whose run outlives SYNC_BUDGET_MS
 * answers 202 with the replies so far, its execution id and Location; the session is busy
 * (409, nothing called) while the runner goes on with it; the runner reads the session's data;
 * the run waits for input and the next message resumes it; Prefer: respond-async; a session
 * run started by POST /executions; a run kept the former way in the session is resumed.
 */
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import { startQueuePoller } from "../../infra/local/sqs-poller.ts";
import type { SessionState } from "../../lib/ports.ts";
import { type ApiFixture, quietLogger, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;
let runner: ReturnType<typeof buildRunnerHandler>;

/** A conversation whose protocol has a prompt, two slow tool calls (past the 300 ms budget), a question and an end. */
const deskDocument = (toolsUrl: string) => ({
  version: "2.2",
  intents: [{ name: "report", patterns: ["report"], intent_type: "command", protocol: "report_flow" }],
  protocols: [
    {
      name: "report_flow",
      steps: [
        { id: "greet", action: "prompt", prompt: "Greet {profile.name}", output: "greeting" },
        { id: "one", action: "tool_api", tool_api_id: "slow", output: "a" },
        { id: "two", action: "tool_api", tool_api_id: "slow", output: "b" },
        { id: "plan", action: "prompt", prompt: "Plan {session.plan} for {profile.name}", output: "p" },
        { id: "ask", action: "input", prompt: "Anything else?", variable: "more" },
        { id: "end", action: "end", response_template: "done {more} {a.n}{b.n}" },
      ],
    },
  ],
  tools: [{ id: "slow", endpoint: `${toolsUrl}/desk-slow`, method: "POST" }],
  profiles: [{ user_id: "u9", name: "Taras", language: "uk" }],
});

beforeAll(async () => {
  api = await startApiFixture({ SYNC_BUDGET_MS: "300", RUNNER_MARGIN_MS: "0" });
  expect((await api.call("PUT", "/documents/desk", { body: deskDocument(api.tools.url) })).status).toBe(201);
  api.tools.route("POST", "/desk-slow", { body: { n: 1 }, delayMs: 250 });
  runner = buildRunnerHandler(api.config, { env: api.env, logger: quietLogger() });
});
afterAll(async () => {
  await api?.close();
});

const toolCalls = () => api.tools.requests.filter((r) => r.path === "/desk-slow").length;

/** A session of `document` for the user u9 (Taras, language uk) on the plan "pro". */
async function newSession(document = "desk") {
  const created = await api.call("POST", "/sessions", {
    body: { document, userId: "u9", data: { plan: "pro" } },
  });
  expect(created.status).toBe(201);
  return created.body.sessionId as string;
}

const say = (sessionId: string, text: string, headers: Record<string, string> = {}) =>
  api.call("POST", `/sessions/${sessionId}/messages`, { body: { text }, headers });

/** Drains the runs queue into the runner, one message at a time, until the run stops running. */
async function runnerGoesOn(executionId: string) {
  const sqs = createSqsClient(api.config, { env: api.env });
  const poller = startQueuePoller({
    sqs,
    region: api.config.AWS_REGION,
    queueUrls: [api.env.RUNS_QUEUE_URL!],
    handler: (event: SQSEvent) =>
      runner(event, { awsRequestId: "test", getRemainingTimeInMillis: () => 60_000 }),
    waitSeconds: 0,
    retryDelaySeconds: 0,
    loop: false,
  });
  try {
    for (let round = 0; round < 40; round++) {
      const shown = await api.call("GET", `/executions/${executionId}`);
      if (shown.body.status !== "running") return shown;
      await poller.pollOnce();
    }
    throw new Error(`run ${executionId} did not stop running`);
  } finally {
    await poller.stop();
  }
}

describe("a session's durable run", () => {
  it("answers 202 with the replies so far past the budget; the session is busy until the runner has it wait; the next message completes it", async () => {
    const sessionId = await newSession();
    const before = toolCalls();
    const first = await say(sessionId, "report please");
    expect(first.status).toBe(202);
    const { executionId } = first.body;
    expect(first.body).toMatchObject({ status: "running", intent: "report", executionId });
    expect(first.body.replies).toEqual(["reply: Greet Taras"]);
    expect(first.headers.get("location")).toBe(`/executions/${executionId}`);

    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body).toMatchObject({ status: "running", sessionId, trigger: "session", intent: "report" });

    // While its run goes on, the session refuses a message having called nothing.
    const calls = toolCalls();
    const llmCalls = api.llm.completions().length;
    const busy = await say(sessionId, "report again");
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe("session_busy");
    expect(toolCalls()).toBe(calls);
    expect(api.llm.completions().length).toBe(llmCalls);

    const waiting = await runnerGoesOn(executionId);
    expect(waiting.body.status).toBe("waiting_input");
    // The runner ran the session's steps with its data and profile.
    expect(api.llm.completions().at(-1)?.messages.at(-1)?.content).toBe("Plan pro for Taras");
    const session = await api.call("GET", `/sessions/${sessionId}`);
    expect(session.body.waiting).toEqual({ protocol: "report_flow", stepId: "ask", executionId });

    const last = await say(sessionId, "no");
    expect(last.status).toBe(200);
    expect(last.body).toMatchObject({ status: "completed", executionId, output: "done no 11" });
    const done = await api.call("GET", `/executions/${executionId}`);
    expect(done.body.status).toBe("completed");
    expect(done.body.path).toEqual(["greet", "one", "two", "plan", "ask", "end"]);
    expect(done.body.steps.map((s: { id: string }) => s.id)).toEqual([
      "greet",
      "one",
      "two",
      "plan",
      "ask",
      "end",
    ]);
    expect(toolCalls() - before).toBe(2);
    expect((await api.call("GET", `/sessions/${sessionId}`)).body.waiting).toBeNull();
  });

  it("Prefer: respond-async answers 202 at once, running no step; the runner completes the leg", async () => {
    const sessionId = await newSession();
    const before = toolCalls();
    const llmCalls = api.llm.completions().length;
    const first = await say(sessionId, "report", { prefer: "respond-async" });
    expect(first.status).toBe(202);
    expect(first.body.replies).toEqual([]);
    expect(toolCalls()).toBe(before);
    expect(api.llm.completions().length).toBe(llmCalls);
    const waiting = await runnerGoesOn(first.body.executionId);
    expect(waiting.body.status).toBe("waiting_input");
    expect(toolCalls() - before).toBe(2);
  });

  it("POST /executions with a session: the session's lease, and its run left running is the session's", async () => {
    const sessionId = await newSession();
    const started = await api.call("POST", "/executions", {
      body: { document: "desk", protocol: "report_flow", sessionId },
    });
    expect(started.status).toBe(202);
    const { executionId } = started.body;
    expect(started.headers.get("location")).toBe(`/executions/${executionId}`);
    const busy = await say(sessionId, "report");
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe("session_busy");
    await runnerGoesOn(executionId);
    const done = await say(sessionId, "yes");
    expect(done.body).toMatchObject({ status: "completed", executionId, output: "done yes 11" });
  });

  it("POST /executions with a session takes in the replies its previous run showed in the runner before taking its place", async () => {
    const recap = deskDocument(api.tools.url);
    const brief = recap.protocols[0]!;
    recap.intents = [{ name: "recap", patterns: ["recap"], intent_type: "command", protocol: "recap" }];
    recap.protocols = [
      // Past the budget: the runner shows its second reply and completes it.
      {
        ...brief,
        name: "brief",
        steps: [...brief.steps.slice(0, 4), { id: "end", action: "end", response_template: "That was all." }],
      },
      {
        ...brief,
        name: "recap",
        memory: { turns: 20 },
        steps: [
          { id: "topic", action: "input", prompt: "Topic?", variable: "topic" },
          { id: "sum", action: "prompt", prompt: "Recap {topic}", output: "r" },
          { id: "end", action: "end" },
        ],
      } as (typeof recap.protocols)[number],
    ];
    expect((await api.call("PUT", "/documents/recap", { body: recap })).status).toBe(201);
    const sessionId = await newSession("recap");

    const first = await api.call("POST", "/executions", {
      body: { document: "recap", protocol: "brief", sessionId },
    });
    expect(first.status).toBe(202);
    expect((await runnerGoesOn(first.body.executionId)).body.status).toBe("completed");

    // The next run of the session waits for input: it becomes the session's run.
    const second = await api.call("POST", "/executions", {
      body: { document: "recap", protocol: "recap", sessionId },
    });
    expect(second.body).toMatchObject({ status: "waiting_input" });
    // While it waits, the session starts no other run: 409, nothing called.
    const llmCalls = api.llm.completions().length;
    const refused = await api.call("POST", "/executions", {
      body: { document: "recap", protocol: "brief", sessionId },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("session_busy");
    expect(refused.body.error.message).toContain(`POST /executions/${second.body.executionId}/cancel`);
    expect(api.llm.completions().length).toBe(llmCalls);
    const answered = await say(sessionId, "billing");
    expect(answered.body).toMatchObject({ status: "completed", executionId: second.body.executionId });
    expect(api.llm.completions().at(-1)?.messages).toEqual([
      { role: "system", content: "Answer in this language: uk." },
      { role: "assistant", content: "reply: Greet Taras" },
      { role: "assistant", content: "reply: Plan pro for Taras" },
      { role: "assistant", content: "That was all." },
      { role: "assistant", content: "Topic?" },
      { role: "user", content: "Recap billing" },
    ]);
  });

  it("an event delivered to a session's run goes on with the session's data, profile and conversation, with the replies the run showed before", async () => {
    const approval = deskDocument(api.tools.url);
    approval.protocols = [
      {
        ...approval.protocols[0]!,
        name: "approval",
        memory: { turns: 10 },
        steps: [
          { id: "draft", action: "prompt", prompt: "Draft for {profile.name}", output: "d" },
          { id: "hold", action: "wait_event", event: "approved", timeout_seconds: 600 },
          { id: "plan", action: "prompt", prompt: "Plan {session.plan} for {profile.name}", output: "p" },
          { id: "end", action: "end", response_template: "{p}" },
        ],
      } as (typeof approval.protocols)[number],
    ];
    approval.intents = [];
    expect((await api.call("PUT", "/documents/approval", { body: approval })).status).toBe(201);
    const sessionId = await newSession("approval");
    const started = await api.call("POST", "/executions", {
      body: { document: "approval", protocol: "approval", sessionId },
    });
    expect(started.status).toBe(202);
    const delivered = await api.call("POST", `/executions/${started.body.executionId}/events/approved`, {
      body: { by: "ops" },
    });
    expect(delivered.status).toBe(200);
    expect(delivered.body).toMatchObject({ status: "completed", output: "reply: Plan pro for Taras" });
    // The reply its first leg showed is in the prompt's memory, though no message took it in.
    expect(api.llm.completions().at(-1)?.messages).toEqual([
      { role: "system", content: "Answer in this language: uk." },
      { role: "assistant", content: "reply: Draft for Taras" },
      { role: "user", content: "Plan pro for Taras" },
    ]);
  });

  it("resumes a run the session kept the former way (a suspended run in the session) from a checkpoint made of it", async () => {
    const created = await api.call("POST", "/sessions", { body: { document: "desk", userId: "u9" } });
    const { sessionId } = created.body;
    const stored = (await api.deps.sessions.get("dev", sessionId)) as SessionState;
    const startedAt = new Date().toISOString();
    const { version: _v, updatedAt: _u, expiresAt: _e, ...rest } = stored;
    await api.deps.sessions.update("dev", sessionId, stored.version, {
      ...rest,
      intent: "report",
      suspendedExecutionId: `ex_former${Date.now().toString(36)}`,
      suspended: {
        v: 1,
        protocol: "report_flow",
        stepId: "ask",
        variables: { a: { n: 4 }, b: { n: 2 } },
        path: ["greet", "one", "two", "plan", "ask"],
        steps: [],
        stepCount: 5,
        unresolved: [],
        startedAt,
        offline: false,
        waiting: { prompt: "Anything else?", since: startedAt },
      },
    });
    const resumed = await say(sessionId, "fine");
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ status: "completed", output: "done fine 42" });
    const record = await api.call("GET", `/executions/${resumed.body.executionId}`);
    expect(record.body).toMatchObject({ status: "completed", sessionId, trigger: "session" });
    expect(record.body.path).toEqual(["greet", "one", "two", "plan", "ask", "end"]);
  });

  it("remembers the replies of the legs the runner advanced: the next message sends them to prompts' memory, once", async () => {
    const memo = deskDocument(api.tools.url);
    memo.intents = [{ name: "memo", patterns: ["memo"], intent_type: "command", protocol: "memo_flow" }];
    memo.protocols = [
      {
        ...memo.protocols[0]!,
        name: "memo_flow",
        memory: { turns: 20 },
        steps: [
          ...memo.protocols[0]!.steps.slice(0, 5),
          { id: "wrap", action: "prompt", prompt: "Wrap up: {more}", output: "w" },
          { id: "ask_again", action: "input", prompt: "Bye?", variable: "bye" },
          { id: "last", action: "prompt", prompt: "Last: {bye}", output: "l" },
        ],
      } as (typeof memo.protocols)[number],
    ];
    expect((await api.call("PUT", "/documents/memo", { body: memo })).status).toBe(201);
    const sessionId = await newSession("memo");

    const first = await say(sessionId, "memo please");
    expect(first.status).toBe(202);
    expect(first.body.replies).toEqual(["reply: Greet Taras"]);
    // The runner shows two more replies: the plan's and the question it then waits on.
    expect((await runnerGoesOn(first.body.executionId)).body.status).toBe("waiting_input");

    const second = await say(sessionId, "nothing");
    expect(second.status).toBe(200);
    // The profile's language comes first, as the system message.
    const earlier = [
      { role: "system", content: "Answer in this language: uk." },
      { role: "user", content: "memo please" },
      { role: "assistant", content: "reply: Greet Taras" },
      { role: "assistant", content: "reply: Plan pro for Taras" },
      { role: "assistant", content: "Anything else?" },
    ];
    expect(api.llm.completions().at(-1)?.messages).toEqual([
      ...earlier,
      { role: "user", content: "Wrap up: nothing" },
    ]);

    // Remembered once: the next message adds only what this one's leg showed.
    await say(sessionId, "yes");
    expect(api.llm.completions().at(-1)?.messages).toEqual([
      ...earlier,
      { role: "user", content: "nothing" },
      { role: "assistant", content: "reply: Wrap up: nothing" },
      { role: "assistant", content: "Bye?" },
      { role: "user", content: "Last: yes" },
    ]);
  });
});
