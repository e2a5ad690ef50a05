/**
 * Waiting, events, callbacks, cancel, redrive and the sweep on the local stack (dynalite,
 * fauxqs, Redis behind the Upstash bridge, tools on loopback). Where minutes or hours must
 * pass, the API, the runner and the sweep share a clock the test moves forward.
 */
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Clock } from "../../lib/ports.ts";
import { systemClock } from "../../lib/adapters/clock.ts";
import { createApiHandler } from "../../lib/http/handler.ts";
import { createDocumentLoader } from "../../lib/services/document-loader.ts";
import { createRunnerHandler } from "../../lib/services/runner.ts";
import { sweepRuns } from "../../lib/services/sweep.ts";
import { executionDepsOf } from "../../lib/services/executions.ts";
import { startRun } from "../../lib/services/runs.ts";
import type { ToolPort } from "../../lib/ports.ts";
import { signCallback } from "../../lib/services/callback-signature.ts";
import { type ApiFixture, invoke, startApiFixture, v2Event } from "../support/api-fixture.ts";

const SECRET = "test-callback-secret-0123456789abcdef";
let api: ApiFixture;

/** A clock `offset` ms ahead of real time: the API, runner and sweep below all read it. */
let offset = 0;
const movedClock: Clock = { now: () => Date.now() + offset, sleep: systemClock.sleep };

const document = (tools: string) => ({
  version: "2.2",
  protocols: [
    {
      name: "approval",
      steps: [
        { id: "notify", action: "tool_api", tool_api_id: "notify" },
        { id: "ask", action: "wait_event", event: "approved", timeout_seconds: 600, on_timeout: "late" },
        { id: "done", action: "end", response_template: "approved by {ask_event.by}" },
        { id: "late", action: "end", response_template: "no answer in time" },
      ],
    },
    {
      name: "nap",
      steps: [
        { id: "nap", action: "wait", seconds: 7200 },
        { id: "done", action: "end", response_template: "awake" },
      ],
    },
    {
      name: "flaky",
      steps: [
        { id: "call", action: "tool_api", tool_api_id: "flaky", output: "r" },
        { id: "done", action: "end", response_template: "got {r.ok}" },
      ],
    },
    {
      name: "rescued",
      steps: [
        { id: "call", action: "tool_api", tool_api_id: "broken", on_error: "sorry" },
        { id: "sorry", action: "end", response_template: "{error.step} failed with {error.code}" },
      ],
    },
    {
      name: "slow",
      steps: [
        { id: "one", action: "tool_api", tool_api_id: "slow" },
        { id: "two", action: "tool_api", tool_api_id: "slow" },
        { id: "done", action: "end", response_template: "slow done" },
      ],
    },
  ],
  tools: [
    {
      id: "notify",
      endpoint: `${tools}/notify`,
      method: "POST",
      parameters: { url: "{callback.approved}", run: "{execution.id}" },
    },
    { id: "flaky", endpoint: `${tools}/flaky`, method: "GET" },
    { id: "broken", endpoint: `${tools}/broken`, method: "GET" },
    { id: "slow", endpoint: `${tools}/slow-step`, method: "POST" },
  ],
});

beforeAll(async () => {
  api = await startApiFixture({
    SYNC_BUDGET_MS: "5000",
    CALLBACK_SECRET: SECRET,
    PUBLIC_API_URL: "http://callbacks.example",
    RUN_STALE_MS: "60000",
  });
  api.tools.route("POST", "/notify", { body: { sent: true } });
  api.tools.route("GET", "/broken", { status: 500, body: { error: "down" } });
  api.tools.route("POST", "/slow-step", { body: { ok: true }, delayMs: 1500 });
  expect((await api.call("PUT", "/documents/control", { body: document(api.tools.url) })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await api?.close();
});

const start = (protocol: string, headers: Record<string, string> = {}) =>
  api.call("POST", "/executions", { body: { document: "control", protocol }, headers });

/** The callback URL the run sent to the notify tool. */
function callbackUrlOf(executionId: string): string {
  const request = api.tools.requests.find(
    (r) => r.path === "/notify" && (JSON.parse(r.body) as { run: string }).run === executionId,
  );
  if (!request) throw new Error(`no notify call of ${executionId}`);
  return (JSON.parse(request.body) as { url: string }).url;
}

const sqsEventOf = (executionId: string): SQSEvent =>
  ({
    Records: [
      { messageId: `m-${executionId}-${Date.now()}`, body: JSON.stringify({ tenant: "dev", executionId }) },
    ],
  }) as unknown as SQSEvent;

/** The runner on the moved clock, one message at a time. */
function runner() {
  const handler = createRunnerHandler({
    ...api.deps,
    clock: movedClock,
    loader: createDocumentLoader(api.deps.documents),
    leaseMs: 30_000,
    marginMs: 0,
  });
  return (executionId: string) =>
    handler(sqsEventOf(executionId), { awsRequestId: "test", getRemainingTimeInMillis: () => 60_000 });
}

/** The API on the moved clock, called as API Gateway calls it. */
const movedApi = () => createApiHandler({ ...api.deps, clock: movedClock });
const asDev = () => ({ authorization: `Bearer ${api.devKey}` });

describe("wait_event and events", () => {
  it("a run waiting for an event answers 202, shows what it waits for, and goes on with the payload", async () => {
    const started = await start("approval");
    expect(started.status).toBe(202);
    const { executionId } = started.body;
    const shown = await api.call("GET", `/executions/${executionId}`);
    expect(shown.body.status).toBe("running");
    expect(shown.body.progress).toMatchObject({ next: "ask", waiting: { kind: "event", event: "approved" } });

    const wrong = await api.call("POST", `/executions/${executionId}/events/rejected`, { body: { by: "x" } });
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe("not_waiting_for_event");
    const otherTenant = await api.call("POST", `/executions/${executionId}/events/approved`, {
      body: { by: "x" },
      key: api.acmeKey,
    });
    expect(otherTenant.status).toBe(404);
    const unknown = await api.call("POST", "/executions/nope/events/approved", { body: {} });
    expect(unknown.status).toBe(404);

    const delivered = await api.call("POST", `/executions/${executionId}/events/approved`, {
      body: { by: "ana" },
    });
    expect(delivered.status).toBe(200);
    expect(delivered.body).toMatchObject({ executionId, status: "completed", output: "approved by ana" });
    const again = await api.call("POST", `/executions/${executionId}/events/approved`, {
      body: { by: "ana" },
    });
    expect(again.status).toBe(409);
    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body.status).toBe("completed");
    expect(record.body.steps.map((s: { id: string }) => s.id)).toEqual(["notify", "ask", "done"]);
    // The leg the event ran is on the run's live stream like any other: its steps and its end.
    const events = (await api.deps.runEvents!.read("dev", executionId, { limit: 1000 })).map((e) => e.event);
    const finished = events.flatMap((e) => (e.type === "step_finished" ? [e.step.id] : []));
    expect(finished).toEqual(["notify", "ask", "done"]);
    expect(events.at(-1)).toMatchObject({ type: "status", status: "completed" });
  });

  it("a person who answers minutes later resumes the run (moved clock)", async () => {
    const handler = movedApi();
    const started = await invoke(
      handler,
      v2Event("POST", "/executions", {
        body: { document: "control", protocol: "approval" },
        headers: asDev(),
      }),
    );
    expect(started.statusCode).toBe(202);
    const { executionId } = started.json;
    offset += 5 * 60_000;
    const answered = await invoke(
      handler,
      v2Event("POST", `/executions/${executionId}/events/approved`, { body: { by: "bo" }, headers: asDev() }),
    );
    expect(answered.statusCode).toBe(200);
    expect(answered.json).toMatchObject({ status: "completed", output: "approved by bo" });
    const ask = answered.json.steps.find((s: { id: string }) => s.id === "ask");
    expect(ask.durationMs).toBeGreaterThanOrEqual(5 * 60_000);
  });

  it("past its timeout the event is refused and the runner takes on_timeout", async () => {
    const handler = movedApi();
    const started = await invoke(
      handler,
      v2Event("POST", "/executions", {
        body: { document: "control", protocol: "approval" },
        headers: asDev(),
      }),
    );
    const { executionId } = started.json;
    offset += 11 * 60_000;
    const late = await invoke(
      handler,
      v2Event("POST", `/executions/${executionId}/events/approved`, { body: { by: "cy" }, headers: asDev() }),
    );
    expect(late.statusCode).toBe(409);
    expect(late.json.error.code).toBe("event_timeout");
    const outcome = await runner()(executionId);
    expect(outcome.batchItemFailures).toEqual([]);
    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body).toMatchObject({ status: "completed", output: "no answer in time" });
    expect(record.body.steps.find((s: { id: string }) => s.id === "ask")).toMatchObject({
      status: "failed",
      error: { code: "event_timeout" },
    });
  });
});

describe("signed callbacks", () => {
  it("delivers the event without an API key once; a forged, replayed or expired URL changes nothing", async () => {
    const started = await start("approval");
    const { executionId } = started.body;
    const url = callbackUrlOf(executionId);
    expect(url.startsWith("http://callbacks.example/callbacks/")).toBe(true);
    const path = url.slice("http://callbacks.example".length);
    const token = path.slice("/callbacks/".length);

    const forged = `/callbacks/${token.slice(0, -2)}${token.endsWith("AA") ? "BB" : "AA"}`;
    const refused = await api.call("POST", forged, { body: { by: "mallory" }, key: null });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("callback_invalid");
    const otherEvent = signCallback(
      { tenant: "dev", executionId, event: "approved", expiresAt: Date.now() - 1 },
      SECRET,
    );
    const expired = await api.call("POST", `/callbacks/${otherEvent}`, { body: {}, key: null });
    expect(expired.status).toBe(410);
    expect(expired.body.error.code).toBe("callback_expired");
    const wrongKey = signCallback(
      { tenant: "dev", executionId, event: "approved", expiresAt: Date.now() + 60_000 },
      "x".repeat(40),
    );
    expect((await api.call("POST", `/callbacks/${wrongKey}`, { body: {}, key: null })).status).toBe(403);
    expect((await api.call("GET", `/executions/${executionId}`)).body.status).toBe("running");

    const delivered = await api.call("POST", path, { body: { by: "webhook" }, key: null });
    expect(delivered.status).toBe(200);
    expect(delivered.body).toMatchObject({ status: "completed", output: "approved by webhook" });
    const replayed = await api.call("POST", path, { body: { by: "webhook" }, key: null });
    expect(replayed.status).toBe(409);
    expect(replayed.body.error.code).toBe("callback_replayed");
  });
});

describe("cancel", () => {
  it("cancels a waiting run at once; a finished run cannot be cancelled", async () => {
    const started = await start("nap");
    expect(started.status).toBe(202);
    const { executionId } = started.body;
    const cancelled = await api.call("POST", `/executions/${executionId}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toEqual({ executionId, status: "cancelled" });
    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
    expect((await api.call("POST", `/executions/${executionId}/cancel`)).body.error.code).toBe(
      "run_finished",
    );
    expect((await api.call("POST", `/executions/${executionId}/cancel`, { key: api.acmeKey })).status).toBe(
      404,
    );
  });

  it("a runner advancing the run notices the cancel and aborts its call in flight", async () => {
    const started = await start("slow", { prefer: "respond-async" });
    expect(started.status).toBe(202);
    const { executionId } = started.body;
    const before = api.tools.requests.filter((r) => r.path === "/slow-step").length;
    const running = runner()(executionId);
    for (
      let i = 0;
      i < 100 && api.tools.requests.filter((r) => r.path === "/slow-step").length === before;
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const cancelled = await api.call("POST", `/executions/${executionId}/cancel`);
    expect([200, 202]).toContain(cancelled.status);
    await running;
    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body.status).toBe("cancelled");
    expect(record.body.steps).toEqual([
      expect.objectContaining({
        id: "one",
        status: "failed",
        error: expect.objectContaining({ code: "cancelled" }),
      }),
    ]);
    expect(api.tools.requests.filter((r) => r.path === "/slow-step").length).toBe(before + 1);
  });
});

describe("redrive and on_error", () => {
  it("a failed run is redriven from its failed step as a new execution; each keeps its own status", async () => {
    api.tools.route("GET", "/flaky", { status: 500, body: { ok: false } });
    const failed = await start("flaky");
    expect(failed.body.status).toBe("failed");
    const oldId = failed.body.executionId;
    api.tools.route("GET", "/flaky", { body: { ok: "yes" } });
    const redriven = await api.call("POST", `/executions/${oldId}/redrive`);
    expect(redriven.status).toBe(200);
    expect(redriven.body).toMatchObject({ status: "completed", output: "got yes" });
    expect(redriven.body.executionId).not.toBe(oldId);
    const newRecord = await api.call("GET", `/executions/${redriven.body.executionId}`);
    expect(newRecord.body).toMatchObject({ status: "completed", redriveOf: oldId });
    expect((await api.call("GET", `/executions/${oldId}`)).body.status).toBe("failed");
    const notAgain = await api.call("POST", `/executions/${redriven.body.executionId}/redrive`);
    expect(notAgain.status).toBe(409);
    expect(notAgain.body.error.code).toBe("not_redrivable");
  });

  it("on_error sends a failing run on with {error.*}", async () => {
    const result = await start("rescued");
    expect(result.body).toMatchObject({ status: "completed", output: "call failed with tool_http_status" });
  });
});

describe("the sweep", () => {
  it("wakes a wait longer than SQS's delay when it is due, and re-enqueues a run whose message was lost", async () => {
    const handler = movedApi();
    const started = await invoke(
      handler,
      v2Event("POST", "/executions", { body: { document: "control", protocol: "nap" }, headers: asDev() }),
    );
    expect(started.statusCode).toBe(202);
    const { executionId } = started.json;
    const runsQueue = api.env.RUNS_QUEUE_URL as string;
    const mine = async () =>
      (await api.drainQueue(runsQueue, 0)).filter(
        (m) => JSON.parse(m.Body ?? "{}").executionId === executionId,
      );
    // Two hours: no SQS message, only the schedule.
    expect(await mine()).toEqual([]);
    const sweepDeps = { ...api.deps, clock: movedClock, runControl: api.deps.runControl! };
    await sweepRuns(sweepDeps);
    expect(await mine()).toEqual([]);

    offset += 2 * 3_600_000 + 1_000;
    const report = await sweepRuns(sweepDeps);
    expect(report.enqueued).toBeGreaterThanOrEqual(1);
    expect(await mine()).toHaveLength(1);
    // The message is lost (drained above): a minute later the sweep hands the run on again.
    offset += 61_000;
    await sweepRuns(sweepDeps);
    expect(await mine()).toHaveLength(1);
    expect((await runner()(executionId)).batchItemFailures).toEqual([]);
    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body).toMatchObject({ status: "completed", output: "awake" });
    // Finished: the sweep drops it from the schedule.
    offset += 61_000;
    await sweepRuns(sweepDeps);
    expect(await mine()).toEqual([]);
  });

  it("enqueues a run whose inline leg's process died before handing it on", async () => {
    // The process advancing the run inline dies in the middle of its first tool call: its call
    // never comes back, it never hands the run on, never records its end.
    let calls = 0;
    const dying: ToolPort = {
      call: (request, signal) => {
        calls += 1;
        return calls === 1 ? new Promise(() => undefined) : api.deps.tools.call(request, signal);
      },
    };
    let executionId: string | undefined;
    const checkpoints = Object.assign(Object.create(api.deps.checkpoints), {
      create: (...args: Parameters<typeof api.deps.checkpoints.create>) => {
        executionId = args[1];
        return api.deps.checkpoints.create(...args);
      },
    }) as typeof api.deps.checkpoints;
    const deps = {
      ...executionDepsOf({ ...api.deps, tools: dying, clock: movedClock }, undefined, undefined),
      checkpoints,
      runQueue: api.deps.runQueue,
      runControl: api.deps.runControl,
      runStaleMs: 60_000,
    };
    const document = await createDocumentLoader(api.deps.documents).load("dev", "control");
    void startRun({ tenant: "dev", document, protocol: "slow", trigger: "api" }, deps, {
      syncBudgetMs: 60_000,
    });
    while (calls === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    if (!executionId) throw new Error("the run has no checkpoint");
    const runsQueue = api.env.RUNS_QUEUE_URL as string;
    const mine = async () =>
      (await api.drainQueue(runsQueue, 0)).filter(
        (m) => JSON.parse(m.Body ?? "{}").executionId === executionId,
      );
    const sweepDeps = { ...api.deps, clock: movedClock, runControl: api.deps.runControl! };
    await sweepRuns(sweepDeps);
    expect(await mine()).toEqual([]);

    // RUN_STALE_MS later, nobody has advanced it: the sweep hands it to the runner, which completes it.
    offset += 61_000;
    await sweepRuns(sweepDeps);
    expect(await mine()).toHaveLength(1);
    expect((await runner()(executionId)).batchItemFailures).toEqual([]);
    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body).toMatchObject({ status: "completed", output: "slow done" });
  });
});
