/**
 * GET /executions/{id}/events on the local stack: the gateway streams the run's events as the
 * runner advances the run, read with an SSE parser while a loopback tool holds a step open;
 * Last-Event-ID resumption; 204 once nothing more will come; tenants apart; a finished run
 * whose stream expired; a run whose event stream fails completes all the same.
 *
 * The client is fetch with eventsource-parser: the tests send an API key header, read status
 * codes (401, 404, 204) and see when the server ends the response, all of which an EventSource
 * hides (it sends no custom header in browsers and reconnects on its own).
 */
import { type EventSourceMessage, createParser } from "eventsource-parser";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import { buildRuntimeDeps } from "../../lib/wiring/runtime.ts";
import { createRunnerHandler } from "../../lib/services/runner.ts";
import { TOKEN_WINDOW_MS } from "../../lib/services/run-events.ts";
import { createDocumentLoader } from "../../lib/services/document-loader.ts";
import { createRedisFromConfig } from "../../lib/adapters/redis/session-store.ts";
import { runEventsKey } from "../../lib/adapters/run-events.ts";
import type { RunEventStream } from "../../lib/ports.ts";
import { StoreUnavailableError } from "../../lib/errors.ts";
import { type ApiFixture, quietLogger, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;
let runner: ReturnType<typeof buildRunnerHandler>;

/** Released by the test: the `hold` step's tool call waits for it. */
let release: () => void = () => undefined;

const document = (toolsUrl: string) => ({
  version: "2.2",
  protocols: [
    {
      name: "held",
      steps: [
        { id: "first", action: "tool_api", tool_api_id: "quick", output: "a" },
        { id: "hold", action: "tool_api", tool_api_id: "held", output: "b" },
        { id: "end", action: "end", response_template: "done {a.n} {b.n}" },
      ],
    },
  ],
  tools: [
    { id: "quick", endpoint: `${toolsUrl}/quick`, method: "POST" },
    { id: "held", endpoint: `${toolsUrl}/held`, method: "POST" },
  ],
});

beforeAll(async () => {
  api = await startApiFixture({ SYNC_BUDGET_MS: "0", RUNNER_MARGIN_MS: "0", RUN_EVENTS_HEARTBEAT_MS: "200" });
  expect((await api.call("PUT", "/documents/held", { body: document(api.tools.url) })).status).toBe(201);
  api.tools.route("POST", "/quick", { body: { n: 1 } });
  api.tools.route("POST", "/held", async () => {
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    return { body: { n: 2 } };
  });
  runner = buildRunnerHandler(api.config, { env: api.env, logger: quietLogger() });
});
afterAll(async () => {
  release();
  await api?.close();
});

const runEvent = (executionId: string): SQSEvent =>
  ({
    Records: [{ messageId: `m-${executionId}`, body: JSON.stringify({ tenant: "dev", executionId }) }],
  }) as unknown as SQSEvent;
const context = { awsRequestId: "events", getRemainingTimeInMillis: () => 60_000 };

/** A run handed to the runner at once (no step inline). */
async function startHeldRun(): Promise<string> {
  const response = await api.call("POST", "/executions", {
    body: { document: "held", protocol: "held" },
    headers: { prefer: "respond-async" },
  });
  expect(response.status).toBe(202);
  return response.body.executionId as string;
}

interface Followed {
  status: number;
  events: EventSourceMessage[];
  comments: string[];
  /** Resolves when the server ended the response. */
  ended: Promise<void>;
}

/** Opens the event stream and parses it as it arrives. */
async function follow(
  executionId: string,
  options: { key?: string | null; lastEventId?: string } = {},
): Promise<Followed> {
  const headers: Record<string, string> = { accept: "text/event-stream" };
  const key = options.key === undefined ? api.devKey : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (options.lastEventId !== undefined) headers["last-event-id"] = options.lastEventId;
  const response = await fetch(`${api.gateway.url}/executions/${executionId}/events`, { headers });
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event), onComment: (c) => comments.push(c) });
  const ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    for await (const chunk of response.body) parser.feed(decoder.decode(chunk, { stream: true }));
  })();
  return { status: response.status, events, comments, ended };
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const heldCalls = () => api.tools.requests.filter((r) => r.path === "/held").length;

/** Runs `executionId` with `handler` past its held step. */
async function runThrough(executionId: string, handler = runner) {
  const before = heldCalls();
  const running = handler(runEvent(executionId), context);
  await until("the held call", () => heldCalls() > before);
  release();
  return running;
}

const data = (event: EventSourceMessage) => JSON.parse(event.data) as Record<string, unknown>;
const finishedIds = (events: EventSourceMessage[]) =>
  events.filter((e) => e.event === "step_finished").map((e) => (data(e).step as { id: string }).id);

describe("GET /executions/{id}/events", () => {
  it("streams a run's events as they happen: a step's events arrive while the next step is still held", async () => {
    const executionId = await startHeldRun();
    const heldBefore = heldCalls();
    const running = runner(runEvent(executionId), context);
    const followed = await follow(executionId);
    expect(followed.status).toBe(200);

    // `first` finished and `hold` is in flight: its tool call came in and is not answered.
    await until("hold's step_started", () =>
      followed.events.some((e) => e.event === "step_started" && data(e).stepId === "hold"),
    );
    await until("the held call", () => heldCalls() > heldBefore);
    const during = await api.call("GET", `/executions/${executionId}`);
    expect(during.body.status).toBe("running");
    expect(
      followed.events.map(
        (e) => `${e.event} ${data(e).stepId ?? data(e).status ?? (data(e).step as { id: string })?.id}`,
      ),
    ).toEqual(["status running", "step_started first", "step_finished first", "step_started hold"]);
    expect(data(followed.events[3]!)).toMatchObject({
      type: "step_started",
      stepId: "hold",
      action: "tool_api",
      visit: 1,
    });
    // The heartbeat keeps an idle connection open while the step is held.
    await until("a heartbeat", () => followed.comments.includes("heartbeat"));

    release();
    await followed.ended;
    await running;
    expect(finishedIds(followed.events)).toEqual(["first", "hold", "end"]);
    expect(followed.events.map((e) => e.event)).toEqual([
      "status",
      "step_started",
      "step_finished",
      "step_started",
      "step_finished",
      "step_started",
      "step_finished",
      "status",
    ]);
    const last = followed.events.at(-1)!;
    expect(last.event).toBe("status");
    expect(data(last)).toMatchObject({ type: "status", status: "completed" });
    const hold = followed.events.find(
      (e) => e.event === "step_finished" && (data(e).step as { id: string }).id === "hold",
    )!;
    expect(data(hold).step).toMatchObject({
      id: "hold",
      action: "tool_api",
      status: "succeeded",
      output: { n: 2 },
    });
    // Every event has its id, in increasing order.
    const ids = followed.events.map((e) => e.id);
    expect(ids.every((id) => /^\d+-\d+$/.test(id ?? ""))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect((await api.call("GET", `/executions/${executionId}`)).body.status).toBe("completed");

    // Last-Event-ID: the events after it, the same ids, and the end again.
    const resumed = await follow(executionId, { lastEventId: ids[1] });
    await resumed.ended;
    expect(resumed.status).toBe(200);
    expect(resumed.events.map((e) => e.id)).toEqual(ids.slice(2));
    expect(resumed.events.map((e) => e.data)).toEqual(followed.events.slice(2).map((e) => e.data));
    // Resuming after the last event of a finished run: nothing will come, 204 stops an EventSource.
    const after = await follow(executionId, { lastEventId: ids.at(-1) });
    expect(after.status).toBe(204);
    // A finished run followed anew: the whole stream replayed, then the end.
    const replay = await follow(executionId);
    await replay.ended;
    expect(replay.events.map((e) => e.id)).toEqual(ids);
  });

  it("answers 401 without a valid key, 404 for another tenant's or an unknown run, 400 for a malformed Last-Event-ID", async () => {
    const executionId = await startHeldRun();
    expect((await follow(executionId, { key: null })).status).toBe(401);
    expect((await follow(executionId, { key: "not-a-key" })).status).toBe(401);
    const other = await follow(executionId, { key: api.acmeKey });
    expect(other.status).toBe(404);
    await other.ended;
    expect(other.events).toEqual([]);
    expect((await follow("ex_no_such_run")).status).toBe(404);
    const malformed = await fetch(`${api.gateway.url}/executions/${executionId}/events`, {
      headers: { authorization: `Bearer ${api.devKey}`, "last-event-id": "x" },
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe("invalid_event_id");
    // Let the run finish (it holds nothing until the runner takes it).
    await runThrough(executionId);
  });

  it("ends a finished run whose stream expired with its recorded status (no id)", async () => {
    const executionId = await startHeldRun();
    await runThrough(executionId);
    await createRedisFromConfig(api.config).del(runEventsKey("dev", executionId));
    const followed = await follow(executionId);
    await followed.ended;
    expect(followed.events).toHaveLength(1);
    expect(followed.events[0]!.id).toBeUndefined();
    expect(data(followed.events[0]!)).toMatchObject({ type: "status", status: "completed" });
  });

  it("a run whose event stream fails completes as it would have", async () => {
    const deps = buildRuntimeDeps(api.config, { env: api.env, logger: quietLogger() });
    let appends = 0;
    const broken: RunEventStream = {
      append: async (_tenant, _executionId, events) => {
        appends += events.length;
        throw new StoreUnavailableError("run_events_unavailable", "the run event stream is unreachable");
      },
      read: async () => [],
    };
    const failing = createRunnerHandler({
      ...deps,
      runEvents: broken,
      loader: createDocumentLoader(deps.documents),
      leaseMs: api.config.RUN_LEASE_MS,
      marginMs: 0,
    });
    const executionId = await startHeldRun();
    expect((await runThrough(executionId, failing)).batchItemFailures).toEqual([]);
    expect(appends).toBeGreaterThanOrEqual(4);
    const done = await api.call("GET", `/executions/${executionId}`);
    expect(done.body).toMatchObject({ status: "completed", output: "done 1 2" });
  });

  it("streams a prompt step's reply as token events, in order, before the step's record, the text of each window in one event; the result is the whole reply", async () => {
    const chat = {
      version: "2.2",
      protocols: [
        {
          name: "chat",
          steps: [
            { id: "answer", action: "prompt", prompt: "Where is my parcel?", output: "reply" },
            { id: "end", action: "end", response_template: "{reply}" },
          ],
        },
      ],
    };
    expect((await api.call("PUT", "/documents/chat", { body: chat })).status).toBe(201);
    api.llm.answerWith(() => "Your parcel left the depot on Monday.");
    // Slower than the sink's window: the words go out in several token events.
    api.llm.setStreamPace(TOKEN_WINDOW_MS * 2);
    const response = await api.call("POST", "/executions", {
      body: { document: "chat", protocol: "chat" },
      headers: { prefer: "respond-async" },
    });
    expect(response.status).toBe(202);
    const executionId = response.body.executionId as string;
    try {
      expect((await runner(runEvent(executionId), context)).batchItemFailures).toEqual([]);
    } finally {
      api.llm.setStreamPace(0);
    }

    const followed = await follow(executionId);
    await followed.ended;
    const kinds = followed.events.map((e) => e.event);
    const tokens = followed.events.filter((e) => e.event === "token").map(data);
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.every((t) => t.stepId === "answer")).toBe(true);
    expect(tokens.map((t) => t.delta).join("")).toBe("Your parcel left the depot on Monday.");
    // Every token of the step comes after it started and before its record.
    expect(kinds.indexOf("token")).toBeGreaterThan(kinds.indexOf("step_started"));
    expect(kinds.lastIndexOf("token")).toBeLessThan(kinds.indexOf("step_finished"));
    // The model was asked to stream; the run's result is the same whole reply.
    const asked = api.llm.completions().at(-1) as { stream?: boolean };
    expect(asked.stream).toBe(true);
    const done = await api.call("GET", `/executions/${executionId}`);
    expect(done.body).toMatchObject({ status: "completed", output: "Your parcel left the depot on Monday." });
  });
});
