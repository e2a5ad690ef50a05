/**
 * The patches of failing steps, low success rates and slow steps, computed from histories
 * written here, applied to the document as sent, validated, and (the error path) run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpTools } from "../../lib/adapters/http/tools.ts";
import { createOfflineLlm } from "../../lib/adapters/llm/offline.ts";
import { runProtocol } from "../../lib/engine/engine.ts";
import { type HttpDouble, startHttpDouble } from "../support/http-double.ts";
import {
  addedWarnings,
  applied,
  expectConflict,
  modelOf,
  recommendationsOf,
  recordOf,
  stepOf,
  stepsOf,
  type StepLine,
} from "./patch-support.ts";

let api: HttpDouble;
beforeAll(async () => {
  api = await startHttpDouble();
});
afterAll(async () => {
  await api.close();
});

function fetchDocument(extra: Record<string, unknown> = {}, steps?: unknown[]) {
  return {
    version: "2.2",
    protocols: [
      {
        name: "fetch",
        steps: steps ?? [
          { id: "call", action: "tool_api", tool_api_id: "api", output: "result", ...extra },
          { id: "show", action: "prompt", prompt: "Show {result.name}", output: "shown" },
          { id: "done", action: "end", response_template: "{shown}" },
        ],
      },
    ],
    tools: [{ id: "api", endpoint: `${api.url}/item`, method: "GET" }],
  };
}

/** Runs where `call` fails with `error` (and HTTP status) in `failures` of `runs`. */
function failingHistory(runs: number, failures: number, error: string, httpStatus?: number) {
  return Array.from({ length: runs }, (_, i) => {
    const fails = i < failures;
    const steps: StepLine[] = [
      {
        id: "call",
        action: "tool_api",
        ...(fails && { status: "failed" as const, error, ...(httpStatus !== undefined && { httpStatus }) }),
      },
    ];
    if (!fails) steps.push({ id: "show", action: "prompt" }, { id: "done", action: "end" });
    return recordOf(i, "fetch", steps);
  });
}

describe("failing_step", () => {
  it("errors a retry can fix: a retry on the step", () => {
    const source = fetchDocument();
    const rec = recommendationsOf(source, "fetch", failingHistory(12, 12, "tool_http_status", 503)).find(
      (r) => r.kind === "failing_step",
    );
    expect(rec?.evidence.suggestion).toBe("retry");
    const patched = applied(source, rec);
    expect(stepOf(patched, 0).retry).toEqual({ attempts: 3, backoff_ms: 200 });
    expectConflict(source, rec!, (copy) => {
      stepOf(copy, 0).retry = { attempts: 2 };
    });
  });

  it("errors a retry will not fix: an end step the failing step's on_error goes to, which the run then takes", async () => {
    const source = fetchDocument();
    const recs = recommendationsOf(source, "fetch", failingHistory(20, 12, "tool_http_status", 400));
    const rec = recs.find((r) => r.kind === "failing_step");
    expect(rec?.evidence.suggestion).toBe("validation");
    const patched = applied(source, rec);
    const steps = stepsOf(patched);
    expect(addedWarnings(source, patched)).toEqual([]);
    expect(steps[0]?.on_error).toBe("call_failed");
    // Put after the last step (an end step), where no run falls through to it.
    expect(steps.map((s) => s.id)).toEqual(["call", "show", "done", "call_failed"]);
    expect(steps[3]).toEqual({
      id: "call_failed",
      action: "end",
      response_template: 'Step "call" could not be done: {error.message}',
    });

    const tools = createHttpTools({ allowHosts: ["127.0.0.1"] });
    const ports = { llm: createOfflineLlm(), tools };
    api.route("GET", "/item", { status: 400, body: { error: "bad id" } });
    const before = await runProtocol({ document: modelOf(source), protocol: "fetch", ports });
    const after = await runProtocol({ document: modelOf(patched), protocol: "fetch", ports });
    expect(before.status).toBe("failed");
    expect(after.status).toBe("completed");
    expect(after.path).toEqual(["call", "call_failed"]);
    expect(after.output).toMatch(/^Step "call" could not be done: .*400/);
    // A call that works takes the same way as before.
    api.route("GET", "/item", { body: { name: "lamp" } });
    const ok = await runProtocol({ document: modelOf(patched), protocol: "fetch", ports });
    expect(ok.path).toEqual(["call", "show", "done"]);
    expect(ok.output).toBe("[offline] Show lamp");

    expectConflict(source, rec!, (copy) => {
      stepOf(copy, 0).on_error = "done";
    });

    // low_success_rate (12 of 20 runs fail at "call") gives the very same patch.
    const low = recs.find((r) => r.kind === "low_success_rate");
    expect(low?.evidence.topFailurePoint).toMatchObject({ step: "call", suggestion: "validation" });
    expect(low?.patch).toEqual(rec?.patch);
  });

  it("low_success_rate at a step that never failed itself (runs timed out there): no patch", () => {
    const source = fetchDocument();
    const records = Array.from({ length: 20 }, (_, i) =>
      recordOf(i, "fetch", [{ id: "call", action: "tool_api" }], i < 10 ? "timed_out" : "completed"),
    );
    const low = recommendationsOf(source, "fetch", records).find((r) => r.kind === "low_success_rate");
    expect(low?.evidence.topFailurePoint).toMatchObject({ step: "call", failedRuns: 10, failures: 0 });
    expect(low?.patch).toBeNull();
  });

  it("puts the end step where no step falls through to it, pinning the start when that is first", () => {
    // Every step falls through (no end step, no next_step): the new step goes first.
    const source = fetchDocument({}, [
      { id: "call", action: "tool_api", tool_api_id: "api", output: "result" },
      { id: "show", action: "prompt", prompt: "Show {result.name}" },
    ]);
    const rec = recommendationsOf(source, "fetch", failingHistory(12, 12, "tool_http_status", 404)).find(
      (r) => r.kind === "failing_step",
    );
    const patched = applied(source, rec);
    expect(patched.protocols[0]?.start).toBe("call");
    expect(stepsOf(patched).map((s) => s.id)).toEqual(["call_failed", "call", "show"]);
    expect(stepOf(patched, 1).on_error).toBe("call_failed");
  });

  it("a step whose failures already have a path: a retry when some are retryable, else none", () => {
    const source = fetchDocument({ on_error: "done" });
    const mixed = [
      ...failingHistory(12, 12, "odd_failure"),
      ...failingHistory(2, 2, "tool_http_status", 503).map((r, i) => ({ ...r, executionId: `m${i}` })),
    ];
    const retry = recommendationsOf(source, "fetch", mixed).find((r) => r.kind === "failing_step");
    expect(retry?.evidence.suggestion).toBe("investigate");
    expect(stepOf(applied(source, retry), 0).retry).toEqual({
      attempts: 3,
      backoff_ms: 200,
    });
    const none = recommendationsOf(source, "fetch", failingHistory(12, 12, "odd_failure")).find(
      (r) => r.kind === "failing_step",
    );
    expect(none?.patch).toBeNull();
  });

  it("has no patch when the step is not in the document as sent", () => {
    const source = fetchDocument();
    const rec = recommendationsOf(source, "fetch", failingHistory(12, 12, "tool_http_status", 400)).find(
      (r) => r.kind === "failing_step",
    );
    expect(rec?.patch).not.toBeNull();
    const renamed = fetchDocument({}, [
      { id: "other", action: "tool_api", tool_api_id: "api", output: "result" },
      { id: "done", action: "end" },
    ]);
    const elsewhere = recommendationsOf(renamed, "fetch", failingHistory(12, 12, "tool_http_status", 400));
    expect(elsewhere.find((r) => r.kind === "failing_step")?.patch).toBeNull();
  });
});

describe("slow_step", () => {
  function slowHistory(latencies: number[], action: "tool_api" | "prompt", completionTokens?: number) {
    const id = action === "tool_api" ? "call" : "show";
    return latencies.map((durationMs, i) =>
      recordOf(i, "fetch", [
        { id, action, durationMs, ...(completionTokens !== undefined && { completionTokens }) },
      ]),
    );
  }

  it("a long tail: a timeout of about twice the median and a retry", () => {
    const source = fetchDocument({ timeout_ms: 30_000 });
    const latencies = [...Array.from({ length: 17 }, () => 1_230), 9_000, 9_500, 9_900];
    const rec = recommendationsOf(source, "fetch", slowHistory(latencies, "tool_api")).find(
      (r) => r.kind === "slow_step",
    );
    const { p50Ms, p95Ms } = rec!.evidence as { p50Ms: number; p95Ms: number };
    expect(p95Ms).toBeGreaterThan(2 * p50Ms);
    const patched = applied(source, rec);
    expect(addedWarnings(source, patched)).toEqual([]);
    const step = stepOf(patched, 0);
    expect(step.timeout_ms).toBe(Math.ceil((2 * p50Ms) / 100) * 100);
    expect(step.timeout_ms).toBeGreaterThanOrEqual(2 * p50Ms);
    expect(step.retry).toEqual({ attempts: 2, backoff_ms: 200 });
    expectConflict(source, rec!, (copy) => {
      stepOf(copy, 0).timeout_ms = 3000;
    });
  });

  it("never above the timeout the step has, and no retry when it already tries twice", () => {
    const source = fetchDocument({ timeout_ms: 1500, retry: { attempts: 2, backoff_ms: 50 } });
    const latencies = [...Array.from({ length: 17 }, () => 1_000), 9_000, 9_500, 9_900];
    const rec = recommendationsOf(source, "fetch", slowHistory(latencies, "tool_api")).find(
      (r) => r.kind === "slow_step",
    );
    expect(rec?.patch).toBeNull();
  });

  it("a prompt slow throughout: its max_tokens halved, not below 1.5 times the replies' mean", () => {
    const source = fetchDocument({}, [
      { id: "show", action: "prompt", prompt: "Tell a story", max_tokens: 1000 },
      { id: "done", action: "end" },
    ]);
    const latencies = Array.from({ length: 20 }, (_, i) => 6_000 + i * 10);
    const halved = recommendationsOf(source, "fetch", slowHistory(latencies, "prompt", 100)).find(
      (r) => r.kind === "slow_step",
    );
    expect(halved?.evidence.meanCompletionTokens).toBe(100);
    expect(stepOf(applied(source, halved), 0).max_tokens).toBe(500);
    expectConflict(source, halved!, (copy) => {
      stepOf(copy, 0).max_tokens = 800;
    });
    const long = recommendationsOf(source, "fetch", slowHistory(latencies, "prompt", 600)).find(
      (r) => r.kind === "slow_step",
    );
    expect(stepOf(applied(source, long), 0).max_tokens).toBe(900);
    // Replies that fill the cap: lowering it would cut them.
    const full = recommendationsOf(source, "fetch", slowHistory(latencies, "prompt", 990)).find(
      (r) => r.kind === "slow_step",
    );
    expect(full?.patch).toBeNull();
  });

  it("a prompt slow throughout takes its preset's max_tokens; without any there is no patch", () => {
    const withPreset = {
      ...fetchDocument({}, [
        { id: "show", action: "prompt", prompt: "Tell a story", preset: "long" },
        { id: "done", action: "end" },
      ]),
      presets: { long: { max_tokens: 2000 } },
    };
    const latencies = Array.from({ length: 20 }, () => 6_000);
    const rec = recommendationsOf(withPreset, "fetch", slowHistory(latencies, "prompt")).find(
      (r) => r.kind === "slow_step",
    );
    expect(stepOf(applied(withPreset, rec), 0).max_tokens).toBe(1000);
    const plain = fetchDocument({}, [
      { id: "show", action: "prompt", prompt: "Tell a story" },
      { id: "done", action: "end" },
    ]);
    const none = recommendationsOf(plain, "fetch", slowHistory(latencies, "prompt")).find(
      (r) => r.kind === "slow_step",
    );
    expect(none?.patch).toBeNull();
  });
});
