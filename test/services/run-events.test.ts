/**
 * The run event sink: events reach the stream in the order published, without the publisher
 * waiting; a failing stream is counted and logged, never thrown; a step record is fitted;
 * streamed text is gathered into few `token` events.
 */
import { describe, expect, it } from "vitest";
import { createMemoryRunEventStream } from "../../lib/adapters/memory-run-event-stream.ts";
import type { StepRecord } from "../../lib/core/run.ts";
import type { RunEventStream } from "../../lib/ports.ts";
import {
  createRunEventSink,
  EVENT_STEP_MAX_BYTES,
  TOKEN_EVENT_MAX_CHARS,
  TOKEN_WINDOW_MS,
} from "../../lib/services/run-events.ts";

const record = (id: string, output: unknown = "ok"): StepRecord => ({
  id,
  action: "tool_api",
  status: "succeeded",
  attempts: 1,
  startedAt: new Date().toISOString(),
  durationMs: 1,
  output,
});

describe("run event sink", () => {
  it("appends in the order published, a slow append holding back the ones after it", async () => {
    const memory = createMemoryRunEventStream();
    let first = true;
    const slow: RunEventStream = {
      append: async (...args) => {
        if (first) {
          first = false;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return memory.append(...args);
      },
      read: memory.read,
    };
    const sink = createRunEventSink({ stream: slow, tenant: "acme", executionId: "ex" });
    sink.status("running");
    sink.stepStarted({ id: "a", action: "tool_api", visit: 1 });
    sink.stepsFinished([record("a")]);
    sink.token("b", "Hel");
    sink.status("completed");
    await sink.flush();
    const events = await memory.read("acme", "ex");
    expect(events.map((e) => e.event.type)).toEqual([
      "status",
      "step_started",
      "step_finished",
      "token",
      "status",
    ]);
    expect(events[3]!.event).toMatchObject({ type: "token", stepId: "b", delta: "Hel" });
    expect(sink.failures).toBe(0);
  });

  it("gathers a step's streamed text into one token event: another step's text or another event sends it first, and so does flush", async () => {
    const memory = createMemoryRunEventStream();
    const sink = createRunEventSink({ stream: memory, tenant: "acme", executionId: "ex" });
    sink.stepStarted({ id: "a", action: "prompt", visit: 1 });
    for (const word of ["Your", " parcel", " left"]) sink.token("a", word);
    sink.token("b", "Hi");
    sink.token("b", " there");
    sink.stepsFinished([record("b")]);
    sink.token("b", "again");
    await sink.flush();
    const events = (await memory.read("acme", "ex")).map((e) => e.event);
    expect(events.map((e) => (e.type === "token" ? `${e.stepId}:${e.delta}` : e.type))).toEqual([
      "step_started",
      "a:Your parcel left",
      "b:Hi there",
      "step_finished",
      "b:again",
    ]);
  });

  it("sends the gathered text when the window ends, and holds at most TOKEN_EVENT_MAX_CHARS in one event", async () => {
    const memory = createMemoryRunEventStream({ maxLen: 5000 });
    const sink = createRunEventSink({ stream: memory, tenant: "acme", executionId: "ex" });
    sink.token("a", "first");
    await new Promise((resolve) => setTimeout(resolve, TOKEN_WINDOW_MS * 3));
    // Sent at the window's end, before any flush.
    expect((await memory.read("acme", "ex")).map((e) => e.event)).toMatchObject([{ delta: "first" }]);
    sink.token("a", "second");
    // A long answer written fast: 3000 tokens of 4 characters make 3 events, not 3000.
    for (let n = 0; n < 3000; n++) sink.token("a", "word");
    await sink.flush();
    const deltas = (await memory.read("acme", "ex")).map((e) => (e.event as { delta: string }).delta);
    expect(deltas.slice(1).join("")).toBe(`second${"word".repeat(3000)}`);
    expect(deltas.slice(1).map((d) => d.length)).toEqual([4094, 4096, 3816]);
    expect(Math.max(...deltas.map((d) => d.length))).toBeLessThanOrEqual(TOKEN_EVENT_MAX_CHARS);
  });

  it("counts and logs events it could not append, never throws, and goes on with the next ones", async () => {
    const memory = createMemoryRunEventStream();
    let calls = 0;
    const flaky: RunEventStream = {
      append: async (...args) => {
        calls += 1;
        if (calls === 1) throw new Error("redis down");
        return memory.append(...args);
      },
      read: memory.read,
    };
    const warnings: Array<[string, unknown]> = [];
    const sink = createRunEventSink({
      stream: flaky,
      tenant: "acme",
      executionId: "ex",
      logger: { warn: (message: string, extra?: unknown) => warnings.push([message, extra]) } as never,
    });
    sink.status("running");
    sink.stepStarted({ id: "a", action: "tool_api", visit: 1 });
    sink.status("completed");
    await expect(sink.flush()).resolves.toBeUndefined();
    // The first append (the first event) failed; the two published meanwhile went in the next.
    expect(calls).toBe(2);
    expect(sink.failures).toBe(1);
    expect((await memory.read("acme", "ex")).map((e) => e.event.type)).toEqual(["step_started", "status"]);
    // The first failure at once, the count at the flush.
    expect(warnings).toHaveLength(2);
    expect(warnings[1]![1]).toMatchObject({ runEventPublishFailures: 1 });
  });

  it("has one append in flight at a time: events published meanwhile go together in the next", async () => {
    const memory = createMemoryRunEventStream();
    const batches: number[] = [];
    let inFlight = 0;
    let most = 0;
    const slow: RunEventStream = {
      append: async (tenant, executionId, events) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        batches.push(events.length);
        await new Promise((resolve) => setTimeout(resolve, 20));
        inFlight -= 1;
        return memory.append(tenant, executionId, events);
      },
      read: memory.read,
    };
    const sink = createRunEventSink({ stream: slow, tenant: "acme", executionId: "ex" });
    for (let n = 0; n < 50; n++) sink.stepStarted({ id: `s${n}`, action: "condition", visit: 1 });
    await sink.flush();
    expect(most).toBe(1);
    expect(batches).toEqual([1, 49]);
    const stored = await memory.read("acme", "ex");
    expect(stored.map((e) => (e.event as { stepId: string }).stepId)).toEqual(
      Array.from({ length: 50 }, (_, n) => `s${n}`),
    );
  });

  it("keeps at most 1000 events waiting (the oldest dropped and counted), and waits 2 s at most for them", async () => {
    const memory = createMemoryRunEventStream({ maxLen: 5000 });
    let unblock: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => {
      unblock = resolve;
    });
    const stuck: RunEventStream = {
      append: async (tenant, executionId, events) => {
        await blocked;
        return memory.append(tenant, executionId, events);
      },
      read: memory.read,
    };
    const sink = createRunEventSink({ stream: stuck, tenant: "acme", executionId: "ex" });
    for (let n = 0; n < 1201; n++) sink.stepStarted({ id: `s${n}`, action: "condition", visit: 1 });
    const started = Date.now();
    await sink.flush();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(Date.now() - started).toBeLessThan(5000);
    // The first went out on its own; of the 1200 after it, the 200 oldest were dropped.
    expect(sink.failures).toBe(200);
    unblock();
    await sink.flush();
    const stored = await memory.read("acme", "ex", { limit: 500 });
    expect(stored[0]!.event).toMatchObject({ stepId: "s0" });
    expect(stored[1]!.event).toMatchObject({ stepId: "s201" });
  });

  it("publishes nothing without a stream", async () => {
    const sink = createRunEventSink({ stream: undefined, tenant: "acme", executionId: "ex" });
    sink.status("running");
    await sink.flush();
    expect(sink.failures).toBe(0);
  });

  it("fits a large step record: its output dropped and marked", async () => {
    const memory = createMemoryRunEventStream();
    const sink = createRunEventSink({ stream: memory, tenant: "acme", executionId: "ex" });
    sink.stepsFinished([record("big", "x".repeat(EVENT_STEP_MAX_BYTES * 2))]);
    await sink.flush();
    const [stored] = await memory.read("acme", "ex");
    expect(stored!.event).toMatchObject({
      type: "step_finished",
      step: { id: "big", outputTruncated: true },
    });
    expect(JSON.stringify(stored!.event).length).toBeLessThan(EVENT_STEP_MAX_BYTES + 200);
  });
});
