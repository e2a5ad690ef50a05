/**
 * Durable runs in the engine: a run that stops between any two steps (advanceRun), its state
 * handed to an awaited checkpoint hook after every step, the Idempotency-Key of tool calls,
 * and the run's deadline kept apart from a request's budget.
 */
import { describe, expect, it } from "vitest";
import { advanceRun, resumeRun, runProtocol } from "../../lib/engine/engine.ts";
import { newRunState } from "../../lib/engine/run-state.ts";
import { toolIdempotencyKey } from "../../lib/engine/idempotency-key.ts";
import { DEFAULT_RUN_DEADLINE_MS } from "../../lib/engine/run-options.ts";
import type { EnginePorts, LlmPort, ToolPort, ToolRequest } from "../../lib/ports.ts";
import { RUN_STATE_PATH_TAIL, type RunState, type StepRecord } from "../../lib/core/run.ts";
import { MovaError } from "../../lib/errors.ts";
import { controlledClock, documentOf, secretsOf } from "./support.ts";

const instantLlm: LlmPort = {
  offline: false,
  complete: async (request) => ({ text: `reply: ${request.messages.at(-1)?.content}`, model: "instant" }),
};

/** A tool port that answers `{ n: n + 1 }` for the query's `n`, recording every request. */
function counterTools(answer?: (request: ToolRequest, call: number) => Promise<void> | void) {
  const calls: ToolRequest[] = [];
  const port: ToolPort = {
    call: async (request) => {
      calls.push(request);
      await answer?.(request, calls.length);
      return { status: 200, headers: {}, body: { n: Number(request.query?.n ?? 0) + 1 } };
    },
  };
  return { calls, port };
}

const counterTool = {
  id: "counter",
  name: "Counter",
  endpoint: "https://counter.example/next",
  method: "GET" as const,
  parameters: { n: "{counter.n}" },
};

/** tick (tool) → more (condition: loop back while n < limit) → done; two steps a round. */
function loopDocument(limit: number, extra: { deadline_ms?: number } = {}) {
  return documentOf({
    tools: [counterTool],
    protocols: [
      {
        name: "loop",
        max_steps: 100_000,
        ...extra,
        steps: [
          { id: "tick", action: "tool_api", tool_api_id: "counter", output: "counter" },
          {
            id: "more",
            action: "condition",
            conditions: [{ variable: "counter.n", operator: "less_than", value: limit }],
            next_step: "tick",
            else_step: "done",
          },
          { id: "done", action: "end", response_template: "counted to {counter.n}" },
        ],
      },
    ],
  });
}

const form = documentOf({
  tools: [counterTool],
  protocols: [
    {
      name: "form",
      steps: [
        { id: "ask", action: "input", prompt: "Name?", variable: "name" },
        { id: "tick", action: "tool_api", tool_api_id: "counter", output: "counter" },
        { id: "end", action: "end", response_template: "Hi {name}" },
      ],
    },
  ],
});

interface Checkpoint {
  state: RunState;
  records: StepRecord[];
}

/** A checkpoint hook keeping every state as JSON went through it, as a store would. */
function recordingHook() {
  const checkpoints: Checkpoint[] = [];
  const hook = async (state: RunState, records: StepRecord[]) => {
    checkpoints.push({ state: JSON.parse(JSON.stringify(state)), records });
  };
  return { checkpoints, hook };
}

const ports = (tools: ToolPort, extra: Partial<EnginePorts> = {}): EnginePorts => ({
  llm: instantLlm,
  tools,
  ...extra,
});

describe("the run's deadline and a request's budget", () => {
  it("does not time out a waiting run resumed 27 s after a 25 s request budget (the deadline is the protocol's)", async () => {
    const time = controlledClock();
    const tools = counterTools();
    const first = await runProtocol({
      document: form,
      protocol: "form",
      variables: { counter: { n: 0 } },
      ports: ports(tools.port, { clock: time.clock }),
      budgetMs: 25_000,
    });
    expect(first.status).toBe("waiting_input");
    expect(first.suspended?.deadlineAt).toBe(time.clock.now() + DEFAULT_RUN_DEADLINE_MS);

    time.advance(27_000);
    const late = await resumeRun({
      document: form,
      suspended: JSON.parse(JSON.stringify(first.suspended)),
      reply: "Ann",
      ports: ports(tools.port, { clock: time.clock }),
      budgetMs: 25_000,
    });
    expect(late.status).toBe("completed");
    expect(late.output).toBe("Hi Ann");

    time.advance(DEFAULT_RUN_DEADLINE_MS);
    const tooLate = await resumeRun({
      document: form,
      suspended: JSON.parse(JSON.stringify(first.suspended)),
      reply: "Bob",
      ports: ports(tools.port, { clock: time.clock }),
    });
    expect(tooLate.status).toBe("timed_out");
  });

  it("recomputes the deadline of a run suspended by the old engine with the request's deadline as its own", async () => {
    const time = controlledClock();
    const first = await runProtocol({
      document: form,
      protocol: "form",
      variables: { counter: { n: 0 } },
      ports: ports(counterTools().port, { clock: time.clock }),
    });
    const { visits: _visits, ...old } = JSON.parse(JSON.stringify(first.suspended));
    old.deadlineAt = time.clock.now() + 25_000;
    time.advance(27_000);
    const resumed = await resumeRun({
      document: form,
      suspended: old,
      reply: "Ann",
      ports: ports(counterTools().port, { clock: time.clock }),
    });
    expect(resumed.status).toBe("completed");
  });

  it("keeps a waiting state's deadline at start + deadline_ms, whatever the budget of the call", async () => {
    const time = controlledClock();
    const state = newRunState({ document: form, protocol: "form", now: time.clock.now() });
    expect(state.deadlineAt).toBe(time.clock.now() + DEFAULT_RUN_DEADLINE_MS);
    const first = await advanceRun({
      document: form,
      state,
      ports: ports(counterTools().port, { clock: time.clock }),
      budgetMs: 25_000,
    });
    expect(first.status).toBe("waiting_input");
    expect(first.state?.deadlineAt).toBe(state.deadlineAt);
    expect(first.state).toMatchObject({ status: "waiting_input", next: "ask" });

    time.advance(3 * 3_600_000);
    const later = await advanceRun({
      document: form,
      state: JSON.parse(JSON.stringify(first.state)),
      reply: "Ann",
      ports: ports(counterTools().port, { clock: time.clock }),
      budgetMs: 25_000,
    });
    expect(later.status).toBe("completed");

    const short = documentOf({ ...form, protocols: [{ ...form.protocols[0]!, deadline_ms: 60_000 }] });
    expect(newRunState({ document: short, protocol: "form", now: 0 }).deadlineAt).toBe(60_000);
  });

  it("still ends a call timed_out when its budget runs out mid-step, without saving the budget", async () => {
    const slow = counterTools(() => new Promise((resolve) => setTimeout(resolve, 2_000)));
    const started = Date.now();
    const result = await advanceRun({
      document: loopDocument(3),
      state: newRunState({ document: loopDocument(3), protocol: "loop", variables: { counter: { n: 0 } } }),
      ports: ports(slow.port),
      budgetMs: 100,
    });
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result.status).toBe("timed_out");
    expect(result.error?.code).toBe("deadline");
    expect((result.state?.deadlineAt ?? 0) - Date.parse(result.startedAt)).toBe(DEFAULT_RUN_DEADLINE_MS);
  });
});

describe("advanceRun with a checkpoint hook", () => {
  it("checkpoints after every step with that step's records, and ends with the finished state", async () => {
    const document = loopDocument(3);
    const { checkpoints, hook } = recordingHook();
    const reported: string[] = [];
    const result = await advanceRun({
      document,
      state: newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } }),
      ports: ports(counterTools().port),
      checkpoint: hook,
      onStep: (record) => reported.push(record.id),
    });
    expect(result.status).toBe("completed");
    expect(result.output).toBe("counted to 3");
    expect(result.path).toEqual(["tick", "more", "tick", "more", "tick", "more", "done"]);
    expect(checkpoints).toHaveLength(7);
    expect(checkpoints.map((c) => c.records.map((r) => r.id))).toEqual(result.path.map((id) => [id]));
    expect(checkpoints.map((c) => [c.state.status, c.state.next, c.state.stepCount])).toEqual([
      ["running", "more", 1],
      ["running", "tick", 2],
      ["running", "more", 3],
      ["running", "tick", 4],
      ["running", "more", 5],
      ["running", "done", 6],
      ["completed", undefined, 7],
    ]);
    expect(checkpoints[0]?.state).toMatchObject({
      variables: { counter: { n: 1 } },
      visits: { tick: 1 },
      outputFrom: "counter",
    });
    expect(checkpoints.at(-1)?.state).toMatchObject({
      output: "counted to 3",
      visits: { tick: 3, more: 3, done: 1 },
    });
    expect(result.state).toEqual(checkpoints.at(-1)?.state);
    expect(reported).toEqual(result.path);
  });

  it("writes a state that does not grow with the steps done (the path is a bounded tail)", async () => {
    const document = loopDocument(1_000);
    const sizes = new Map<number, number>();
    const result = await advanceRun({
      document,
      state: newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } }),
      ports: ports(counterTools().port),
      keepSteps: false,
      checkpoint: async (state) => {
        sizes.set(state.stepCount, Buffer.byteLength(JSON.stringify(state)));
        expect(state.path.length).toBeLessThanOrEqual(RUN_STATE_PATH_TAIL);
      },
    });
    expect(result.status).toBe("completed");
    expect(result.steps).toEqual([]);
    expect(sizes.size).toBe(2_001);
    // Only the digits of the counters grow: 200 → 1998 steps adds a handful of bytes.
    expect((sizes.get(1_998) ?? 0) - (sizes.get(200) ?? 0)).toBeLessThan(16);
  });

  it("stops with status running when shouldPause says so, and goes on from the state in another call", async () => {
    const document = loopDocument(4);
    const whole = await runProtocol({
      document,
      protocol: "loop",
      variables: { counter: { n: 0 } },
      ports: ports(counterTools().port),
    });
    let state = newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } });
    const ids: string[] = [];
    let calls = 0;
    for (;;) {
      calls += 1;
      const leg = await advanceRun({
        document,
        state: JSON.parse(JSON.stringify(state)),
        ports: ports(counterTools().port),
        shouldPause: () => true,
        onStep: (record) => ids.push(record.id),
      });
      state = leg.state as RunState;
      if (leg.status !== "running") {
        expect(leg.status).toBe("completed");
        expect(leg.output).toBe(whole.output);
        break;
      }
      expect(leg.path.at(-1)).toBe(ids.at(-1));
    }
    // Every call advanced the run by exactly one step.
    expect(calls).toBe(whole.path.length);
    expect(ids).toEqual(whole.path);
    expect(state.stepCount).toBe(whole.path.length);
  });

  it("stops running at the last good checkpoint when the hook throws, and the step in flight runs again with the same Idempotency-Key", async () => {
    const document = loopDocument(3);
    const tools = counterTools();
    const saved: RunState[] = [];
    const conflict = new MovaError("run_conflict", "another worker wrote the run");
    const result = await advanceRun({
      document,
      state: newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } }),
      ports: ports(tools.port),
      executionId: "ex-1",
      checkpoint: async (state) => {
        if (saved.length === 2) throw conflict;
        saved.push(JSON.parse(JSON.stringify(state)));
      },
    });
    expect(result.status).toBe("running");
    expect(result.error).toMatchObject({ code: "run_conflict" });
    expect(result.checkpointError).toBe(conflict);
    expect(result.state).toEqual(saved[1]);
    expect(result.state).toMatchObject({ next: "tick", stepCount: 2 });

    // The third step (tick, visit 2) ran but was not saved: from the last checkpoint it runs again.
    const resumed = await advanceRun({
      document,
      state: result.state as RunState,
      ports: ports(tools.port),
      executionId: "ex-1",
    });
    expect(resumed.status).toBe("completed");
    const keys = tools.calls.map((call) => call.idempotencyKey);
    expect(keys).toEqual([
      toolIdempotencyKey("ex-1", ["tick"], 1),
      toolIdempotencyKey("ex-1", ["tick"], 2),
      toolIdempotencyKey("ex-1", ["tick"], 2),
      toolIdempotencyKey("ex-1", ["tick"], 3),
    ]);
    expect(new Set(keys).size).toBe(3);
  });

  it("fails the step with state_too_large when the hook refuses the state, keeping the last variables that fit", async () => {
    const document = loopDocument(5);
    const big = counterTools();
    const bigPort: ToolPort = {
      call: async (request) => {
        const response = await big.port.call(request);
        const n = (response.body as { n: number }).n;
        return { ...response, body: { n, padding: "x".repeat(n * 1_000) } };
      },
    };
    const checkpoints: Checkpoint[] = [];
    const result = await advanceRun({
      document,
      state: newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } }),
      ports: ports(bigPort),
      checkpoint: async (state, records) => {
        const bytes = Buffer.byteLength(JSON.stringify(state));
        if (bytes > 2_500) throw new MovaError("state_too_large", `the run's state is ${bytes} bytes`);
        checkpoints.push({ state: JSON.parse(JSON.stringify(state)), records });
      },
    });
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("state_too_large");
    expect(result.error?.message).toMatch(/^step "tick" failed: /);
    const last = checkpoints.at(-1);
    expect(last?.state).toMatchObject({ status: "failed", error: { code: "state_too_large" }, stepCount: 5 });
    expect(last?.state.variables.counter).toMatchObject({ n: 2 });
    expect(last?.records.map((r) => [r.id, r.status, r.error?.code])).toEqual([
      ["tick", "failed", "state_too_large"],
    ]);
    expect(result.steps.at(-1)).toMatchObject({ id: "tick", status: "failed" });
    expect(result.state).toEqual(last?.state);
  });

  it("waits for input, refuses to go on without the reply, and checkpoints the input step when it comes", async () => {
    const { checkpoints, hook } = recordingHook();
    const first = await advanceRun({
      document: form,
      state: newRunState({ document: form, protocol: "form", variables: { counter: { n: 0 } } }),
      ports: ports(counterTools().port),
      checkpoint: hook,
    });
    expect(first.status).toBe("waiting_input");
    expect(first.waitingFor).toEqual({ stepId: "ask", prompt: "Name?", variable: "name" });
    expect(first.suspended).toBeUndefined();
    expect(checkpoints).toHaveLength(1);
    expect(checkpoints[0]?.records).toEqual([]);
    expect(checkpoints[0]?.state).toMatchObject({
      status: "waiting_input",
      next: "ask",
      waiting: { prompt: "Name?", variable: "name" },
    });

    const waiting = first.state as RunState;
    await expect(
      advanceRun({ document: form, state: waiting, ports: ports(counterTools().port) }),
    ).rejects.toMatchObject({ code: "reply_required" });
    const second = await advanceRun({
      document: form,
      state: waiting,
      reply: "Ann",
      ports: ports(counterTools().port),
      checkpoint: hook,
    });
    expect(second.status).toBe("completed");
    expect(second.output).toBe("Hi Ann");
    expect(checkpoints.slice(1).map((c) => c.records.map((r) => [r.id, r.output]))).toEqual([
      [["ask", "Ann"]],
      [["tick", { n: 1 }]],
      [["end", "Hi Ann"]],
    ]);
    await expect(
      advanceRun({ document: form, state: second.state as RunState, ports: ports(counterTools().port) }),
    ).rejects.toMatchObject({ code: "run_finished" });
    await expect(
      advanceRun({
        document: form,
        state: { v: 1 } as unknown as RunState,
        ports: ports(counterTools().port),
      }),
    ).rejects.toMatchObject({ code: "invalid_run_state" });
  });

  it("ends cancelled when the caller's signal aborts, and checkpoints that", async () => {
    const controller = new AbortController();
    const tools = counterTools((_request, call) => {
      if (call === 2) controller.abort();
    });
    const document = loopDocument(10);
    const { checkpoints, hook } = recordingHook();
    const result = await advanceRun({
      document,
      state: newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } }),
      ports: ports(tools.port),
      checkpoint: hook,
      signal: controller.signal,
    });
    expect(result.status).toBe("cancelled");
    expect(result.error?.code).toBe("cancelled");
    expect(checkpoints.at(-1)?.state).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
  });

  it("keeps secret values out of the state and re-reads them by name to keep them redacted", async () => {
    const document = documentOf({
      tools: [
        {
          id: "echo",
          name: "Echo",
          endpoint: "https://echo.example/",
          method: "GET",
          parameters: { key: "{secrets.API_KEY}" },
        },
      ],
      protocols: [
        {
          name: "p",
          steps: [
            { id: "call", action: "tool_api", tool_api_id: "echo", output: "echoed" },
            { id: "ask", action: "input", prompt: "More?", variable: "more" },
            { id: "end", action: "end", response_template: "{echoed.key}" },
          ],
        },
      ],
    });
    const echo: ToolPort = {
      call: async (request) => ({ status: 200, headers: {}, body: { key: request.query?.key } }),
    };
    const secrets = secretsOf({ API_KEY: "s3cr3t-value" });
    const { checkpoints, hook } = recordingHook();
    const first = await advanceRun({
      document,
      state: newRunState({ document, protocol: "p" }),
      ports: ports(echo, { secrets }),
      checkpoint: hook,
    });
    expect(first.status).toBe("waiting_input");
    expect(JSON.stringify(checkpoints)).not.toContain("s3cr3t-value");
    expect(first.state?.secretNames).toEqual(["API_KEY"]);
    const second = await advanceRun({
      document,
      state: first.state as RunState,
      reply: "no",
      ports: ports(echo, { secrets }),
      checkpoint: hook,
    });
    expect(second.output).toBe("[REDACTED]");
    expect(JSON.stringify(second)).not.toContain("s3cr3t-value");
  });
});

describe("Idempotency-Key of tool calls", () => {
  it("is shared by the retries of one visit, differs between visits and between a branch and its standalone step", async () => {
    let failures = 1;
    const tools = counterTools(() => {
      if (failures-- > 0) throw new MovaError("tool_http_status", "busy", { status: 503, retryable: true });
    });
    const document = documentOf({
      tools: [counterTool],
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "tick",
              action: "tool_api",
              tool_api_id: "counter",
              output: "counter",
              retry: { attempts: 2, backoff_ms: 1 },
            },
            { id: "both", action: "parallel", steps: ["tick"] },
            { id: "end", action: "end" },
          ],
        },
      ],
    });
    const result = await runProtocol({
      document,
      protocol: "p",
      variables: { counter: { n: 0 } },
      ports: ports(tools.port),
      executionId: "ex-9",
    });
    expect(result.status).toBe("completed");
    expect(tools.calls.map((call) => call.idempotencyKey)).toEqual([
      toolIdempotencyKey("ex-9", ["tick"], 1),
      toolIdempotencyKey("ex-9", ["tick"], 1),
      toolIdempotencyKey("ex-9", ["both", "tick"], 1),
    ]);
    expect(toolIdempotencyKey("ex-9", ["tick"], 1)).not.toBe(toolIdempotencyKey("ex-9", ["both", "tick"], 1));
    expect(toolIdempotencyKey("ex-9", ["tick"], 1)).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const anonymous = counterTools();
    await runProtocol({
      document,
      protocol: "p",
      variables: { counter: { n: 0 } },
      ports: ports(anonymous.port),
    });
    expect(anonymous.calls.every((call) => call.idempotencyKey === undefined)).toBe(true);
  });
});
