/**
 * `wait`, `wait_event` and `on_error` in the engine: a durable run pauses (status `running`,
 * the pause in its state, nothing written while it waits), goes on when its wait is over or
 * its event arrives, takes `on_timeout` or fails with `event_timeout`, and a failing step with
 * `on_error` sends the run on with `{error.*}`. Time is a controlled clock.
 */
import { describe, expect, it } from "vitest";
import { advanceRun, runProtocol } from "../../lib/engine/engine.ts";
import { newRunState } from "../../lib/engine/run-state.ts";
import type { EnginePorts, LlmPort, ToolPort } from "../../lib/ports.ts";
import type { RunState } from "../../lib/core/run.ts";
import { loadDocument } from "../../lib/mova/validate.ts";
import { controlledClock, documentOf } from "./support.ts";

const llm: LlmPort = { offline: false, complete: async () => ({ text: "ok", model: "m" }) };
const failingTools: ToolPort = { call: async () => ({ status: 500, headers: {}, body: { no: 1 } }) };
const ports = (clock: EnginePorts["clock"], tools: ToolPort = failingTools): EnginePorts => ({
  llm,
  tools,
  clock,
});

const waitDocument = documentOf({
  protocols: [
    {
      name: "nap",
      steps: [
        { id: "nap", action: "wait", seconds: 3600 },
        { id: "done", action: "end", response_template: "awake" },
      ],
    },
    {
      name: "approval",
      steps: [
        { id: "ask", action: "wait_event", event: "approved", timeout_seconds: 600, on_timeout: "late" },
        { id: "done", action: "end", response_template: "approved by {ask_event.by}" },
        { id: "late", action: "end", response_template: "no answer" },
      ],
    },
    {
      name: "strict",
      steps: [
        { id: "ask", action: "wait_event", event: "approved", timeout_seconds: 60, output: "answer" },
        { id: "done", action: "end", response_template: "{answer}" },
      ],
    },
    {
      name: "rescued",
      steps: [
        { id: "call", action: "tool_api", tool_api_id: "broken", on_error: "sorry" },
        { id: "done", action: "end", response_template: "fine" },
        { id: "sorry", action: "end", response_template: "{error.step} {error.code}: {error.message}" },
      ],
    },
    {
      name: "links",
      steps: [{ id: "done", action: "end", response_template: "{execution.id} {callback.approved}" }],
    },
    {
      name: "until",
      steps: [
        { id: "nap", action: "wait", until: "{wake_at}" },
        { id: "done", action: "end", response_template: "awake" },
      ],
    },
  ],
  tools: [{ id: "broken", endpoint: "https://broken.example/x", method: "GET" }],
});

async function start(protocol: string, clock: ReturnType<typeof controlledClock>, variables = {}) {
  const writes: RunState[] = [];
  const state = newRunState({ document: waitDocument, protocol, variables, now: clock.clock.now() });
  const advance = (from: RunState, extra: { event?: { name: string; payload: unknown } } = {}) =>
    advanceRun({
      document: waitDocument,
      ports: ports(clock.clock),
      state: from,
      executionId: "exec-1",
      checkpoint: async (next) => {
        writes.push(next);
      },
      ...extra,
    });
  return { writes, state, advance };
}

describe("wait", () => {
  it("pauses the run until its time, writes nothing while early, then goes on", async () => {
    const time = controlledClock();
    const run = await start("nap", time);
    const paused = await run.advance(run.state);
    expect(paused.status).toBe("running");
    expect(paused.pausedAt?.stepId).toBe("nap");
    expect(paused.state?.pause).toMatchObject({ kind: "wait", wakeAt: time.clock.now() + 3_600_000 });
    expect(run.writes).toHaveLength(1);

    time.advance(3_599_000);
    const early = await run.advance(paused.state as RunState);
    expect(early.status).toBe("running");
    expect(early.steps).toEqual([]);
    expect(run.writes).toHaveLength(1);

    time.advance(1_000);
    const done = await run.advance(paused.state as RunState);
    expect(done.status).toBe("completed");
    expect(done.output).toBe("awake");
    expect(done.steps[0]).toMatchObject({ id: "nap", status: "succeeded", durationMs: 3_600_000 });
  });

  it("waits until a templated time; a time already past goes straight on", async () => {
    const time = controlledClock();
    const later = new Date(time.clock.now() + 120_000).toISOString();
    const run = await start("until", time, { wake_at: later });
    const paused = await run.advance(run.state);
    expect(paused.state?.pause?.wakeAt).toBe(Date.parse(later));

    const past = await start("until", time, { wake_at: "2000-01-01T00:00:00Z" });
    expect((await past.advance(past.state)).status).toBe("completed");

    const bad = await start("until", time, { wake_at: "tomorrow-ish" });
    const failed = await bad.advance(bad.state);
    expect(failed.status).toBe("failed");
    expect(failed.error?.code).toBe("invalid_wait_until");
  });

  it("a wait beyond the run's deadline wakes at the deadline and the run times out", async () => {
    const time = controlledClock();
    const state = newRunState({
      document: waitDocument,
      protocol: "nap",
      deadlineMs: 60_000,
      now: time.clock.now(),
    });
    const advance = (from: RunState) =>
      advanceRun({
        document: waitDocument,
        ports: ports(time.clock),
        state: from,
        checkpoint: async () => {},
      });
    const paused = await advance(state);
    expect(paused.state?.pause?.wakeAt).toBe(state.deadlineAt);
    time.advance(60_000);
    const ended = await advance(paused.state as RunState);
    expect(ended.status).toBe("timed_out");
  });

  it("a run that is not durable sleeps through a wait and cannot wait for an event", async () => {
    const time = controlledClock();
    const slept = await runProtocol({ document: waitDocument, protocol: "nap", ports: ports(time.clock) });
    expect(slept.status).toBe("completed");
    expect(time.sleeps).toEqual([3_600_000]);
    const event = await runProtocol({
      document: waitDocument,
      protocol: "approval",
      ports: ports(time.clock),
    });
    expect(event.status).toBe("failed");
    expect(event.error?.code).toBe("events_unsupported");
  });
});

describe("a paused run stopped from outside", () => {
  it("a cancelled run paused at a wait ends cancelled without waiting", async () => {
    const time = controlledClock();
    const run = await start("nap", time);
    const paused = await run.advance(run.state);
    const controller = new AbortController();
    controller.abort();
    const cancelled = await advanceRun({
      document: waitDocument,
      ports: ports(time.clock),
      state: paused.state as RunState,
      signal: controller.signal,
      checkpoint: async () => {},
    });
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.state).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
    expect(cancelled.state?.pause).toBeUndefined();
  });
});

describe("wait_event", () => {
  it("the event's payload goes to the step's output and the run goes on", async () => {
    const time = controlledClock();
    const run = await start("approval", time);
    const paused = await run.advance(run.state);
    expect(paused.state?.pause).toMatchObject({ kind: "event", event: "approved" });
    time.advance(300_000);
    const done = await run.advance(paused.state as RunState, {
      event: { name: "approved", payload: { by: "ana" } },
    });
    expect(done.status).toBe("completed");
    expect(done.output).toBe("approved by ana");
    expect(done.variables.ask_event).toEqual({ by: "ana" });
    expect(done.steps[0]).toMatchObject({ id: "ask", output: { by: "ana" }, durationMs: 300_000 });
  });

  it("refuses an event it does not wait for, and one after its timeout, changing nothing", async () => {
    const time = controlledClock();
    const run = await start("strict", time);
    const paused = await run.advance(run.state);
    const writes = run.writes.length;
    await expect(
      run.advance(paused.state as RunState, { event: { name: "rejected", payload: null } }),
    ).rejects.toMatchObject({ code: "not_waiting_for_event", status: 409 });
    time.advance(60_000);
    await expect(
      run.advance(paused.state as RunState, { event: { name: "approved", payload: null } }),
    ).rejects.toMatchObject({ code: "event_timeout", status: 409 });
    expect(run.writes).toHaveLength(writes);
    await expect(
      run.advance(run.state, { event: { name: "approved", payload: null } }),
    ).rejects.toMatchObject({ code: "not_waiting_for_event" });
  });

  it("after its timeout the run goes to on_timeout, or fails with event_timeout", async () => {
    const time = controlledClock();
    const run = await start("approval", time);
    const paused = await run.advance(run.state);
    time.advance(599_000);
    expect((await run.advance(paused.state as RunState)).steps).toEqual([]);
    time.advance(1_000);
    const late = await run.advance(paused.state as RunState);
    expect(late.status).toBe("completed");
    expect(late.output).toBe("no answer");
    expect(late.steps[0]).toMatchObject({ id: "ask", status: "failed", error: { code: "event_timeout" } });

    const strict = await start("strict", time);
    const waiting = await strict.advance(strict.state);
    time.advance(60_000);
    const failed = await strict.advance(waiting.state as RunState);
    expect(failed.status).toBe("failed");
    expect(failed.error?.code).toBe("event_timeout");
  });
});

describe("on_error and built-ins", () => {
  it("a failing step with on_error sends the run on with {error.*}", async () => {
    const time = controlledClock();
    const result = await runProtocol({
      document: waitDocument,
      protocol: "rescued",
      ports: ports(time.clock),
    });
    expect(result.status).toBe("completed");
    expect(result.output).toBe("call tool_http_status: the tool answered HTTP 500");
    expect(result.steps.map((step) => [step.id, step.status])).toEqual([
      ["call", "failed"],
      ["sorry", "succeeded"],
    ]);
  });

  it("a protocol's error_handling.fallback_step_id sends a failing step on as on_error does", async () => {
    const { document } = loadDocument(
      JSON.stringify({
        version: "2.2",
        protocols: [
          {
            name: "p",
            error_handling: { fallback_step_id: "sorry" },
            steps: [
              { id: "call", action: "tool_api", tool_api_id: "broken" },
              { id: "done", action: "end", response_template: "fine" },
              { id: "sorry", action: "end", response_template: "sorry: {error.code} at {error.step}" },
            ],
          },
        ],
        tools: [{ id: "broken", endpoint: "https://broken.example/x", method: "GET" }],
      }),
    );
    const result = await runProtocol({ document, protocol: "p", ports: ports(controlledClock().clock) });
    expect(result).toMatchObject({ status: "completed", output: "sorry: tool_http_status at call" });
  });

  it("{execution.id} and {callback.EVENT} come from the caller", async () => {
    const time = controlledClock();
    const result = await runProtocol({
      document: waitDocument,
      protocol: "links",
      ports: ports(time.clock),
      executionId: "exec-9",
      callbackUrl: (event) => `https://cb.example/${event}`,
    });
    expect(result.output).toBe("exec-9 https://cb.example/approved");
    const without = await runProtocol({
      document: waitDocument,
      protocol: "links",
      ports: ports(time.clock),
    });
    expect(without.unresolved).toEqual(["execution.id", "callback.approved"]);
  });
});
