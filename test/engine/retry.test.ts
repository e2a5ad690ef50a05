import { MovaError } from "../../lib/errors.ts";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { resumeRun, runProtocol } from "../../lib/engine/engine.ts";
import { backoffDelay, isRetryable, MAX_BACKOFF_MS, resolveRetryPolicy } from "../../lib/engine/retry.ts";
import { controlledClock, documentOf, useServers } from "./support.ts";

const servers = useServers();

function toolDocument(
  path: string,
  step: Record<string, unknown> = {},
  tool: Record<string, unknown> = {},
  protocol: Record<string, unknown> = {},
) {
  return documentOf({
    tools: [{ id: "api", endpoint: `${servers.api.url}${path}`, method: "GET", ...tool }],
    protocols: [
      { name: "p", ...protocol, steps: [{ id: "call", action: "tool_api", tool_api_id: "api", ...step }] },
    ],
  });
}

const requestsTo = (path: string) => servers.api.requests.filter((r) => r.path === path).length;

describe("retries", () => {
  it("retries 5xx until success, counting every try", async () => {
    servers.api.queue("GET", "/flaky", { status: 500, body: { e: 1 } }, { status: 503, body: "busy" });
    servers.api.route("GET", "/flaky", { body: { ok: true } });
    const document = toolDocument("/flaky", { retry: { attempts: 3, backoff_ms: 5 } });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("completed");
    expect(result.steps[0]).toMatchObject({
      status: "succeeded",
      attempts: 3,
      httpStatus: 200,
      output: { ok: true },
    });
    expect(result.variables.call_result).toEqual({ ok: true });
    expect(requestsTo("/flaky")).toBe(3);
  });

  it("retries 429 and fails with tool_http_status once the tries run out", async () => {
    servers.api.route("GET", "/limited", { status: 429, body: { error: "slow down" } });
    const document = toolDocument("/limited", { retry: { attempts: 2, backoff_ms: 5 } });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("tool_http_status");
    expect(result.steps[0]).toMatchObject({
      status: "failed",
      attempts: 2,
      httpStatus: 429,
      error: { code: "tool_http_status" },
    });
    expect(requestsTo("/limited")).toBe(2);
  });

  it("never retries a 4xx", async () => {
    servers.api.route("GET", "/bad", { status: 400, body: { error: "bad" } });
    const document = toolDocument("/bad", { retry: { attempts: 5, backoff_ms: 5 } });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("failed");
    expect(result.steps[0]).toMatchObject({
      attempts: 1,
      httpStatus: 400,
      error: { code: "tool_http_status" },
    });
    expect(requestsTo("/bad")).toBe(1);
  });

  it("bounds each attempt with timeout_ms and retries timeouts", async () => {
    servers.api.route("GET", "/slow", { body: { late: true }, delayMs: 400 });
    const document = toolDocument("/slow", { retry: { attempts: 2, backoff_ms: 5 }, timeout_ms: 80 });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("failed");
    expect(result.steps[0]).toMatchObject({ attempts: 2, error: { code: "timeout" } });
    expect(requestsTo("/slow")).toBe(2);
    // Each attempt was cut short: the client had closed it when its answer was due.
    await vi.waitFor(() => {
      const slow = servers.api.requests.filter((r) => r.path === "/slow");
      expect(slow.map((r) => r.abandoned)).toEqual([true, true]);
    });
  });

  it("uses the tool's retry and timeout when the step has none, and the step's over the tool's", async () => {
    servers.api.route("GET", "/down", { status: 502, body: "bad gateway" });
    const toolDefaults = toolDocument("/down", {}, { retry: { attempts: 3, backoff_ms: 1 } });
    const byTool = await runProtocol({ document: toolDefaults, protocol: "p", ports: servers.ports() });
    expect(byTool.steps[0]?.attempts).toBe(3);

    const stepOverrides = toolDocument(
      "/down",
      { retry: { attempts: 2, backoff_ms: 1 } },
      { retry: { attempts: 4, backoff_ms: 1 } },
    );
    const byStep = await runProtocol({ document: stepOverrides, protocol: "p", ports: servers.ports() });
    expect(byStep.steps[0]?.attempts).toBe(2);

    const noRetry = await runProtocol({
      document: toolDocument("/down"),
      protocol: "p",
      ports: servers.ports(),
    });
    expect(noRetry.steps[0]?.attempts).toBe(1);
    expect(requestsTo("/down")).toBe(6);
  });

  it("retries an LLM 500 and a 429 through the real SDK", async () => {
    servers.openai.queue(
      { status: 500, body: { error: { message: "boom" } } },
      { status: 429, body: { error: { message: "rate" } } },
    );
    const document = documentOf({
      protocols: [
        {
          name: "p",
          steps: [{ id: "ask", action: "prompt", prompt: "q", retry: { attempts: 3, backoff_ms: 5 } }],
        },
      ],
    });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("completed");
    expect(result.steps[0]).toMatchObject({ status: "succeeded", attempts: 3 });
    expect(servers.openai.completions()).toHaveLength(3);
  });

  it("waits exponentially longer between tries, with jitter from ports.random", async () => {
    servers.api.route("GET", "/always500", { status: 500, body: "no" });
    const document = toolDocument("/always500", { retry: { attempts: 4, backoff_ms: 100 } });
    const { clock, sleeps } = controlledClock();
    const result = await runProtocol({
      document,
      protocol: "p",
      ports: servers.ports({ clock, random: () => 0.5 }),
    });
    expect(result.steps[0]?.attempts).toBe(4);
    // Equal jitter: half the exponential ceiling plus random × half → 0.75 × 100, 200, 400.
    expect(sleeps).toEqual([75, 150, 300]);

    const low = controlledClock();
    await runProtocol({
      document,
      protocol: "p",
      ports: servers.ports({ clock: low.clock, random: () => 0 }),
    });
    expect(low.sleeps).toEqual([50, 100, 200]);
  });
});

describe("backoff", () => {
  it("stays inside the jitter window and never exceeds the cap", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (retry, base, r) => {
          const ceiling = Math.min(MAX_BACKOFF_MS, base * 2 ** (retry - 1));
          const full = backoffDelay(retry, base, () => r, "full");
          const equal = backoffDelay(retry, base, () => r, "equal");
          return full >= 0 && full <= ceiling && equal >= Math.floor(ceiling / 2) && equal <= ceiling;
        },
      ),
    );
  });

  it("classifies what is retryable: timeouts, network, 429 and 5xx, never another 4xx", () => {
    expect(isRetryable(new MovaError("tool_timeout", "t", { retryable: true }))).toBe(true);
    expect(isRetryable(new MovaError("tool_network", "n", { retryable: true }))).toBe(true);
    expect(isRetryable(new MovaError("x", "429", { status: 429 }))).toBe(true);
    expect(isRetryable(new MovaError("x", "503", { status: 503 }))).toBe(true);
    expect(isRetryable(new MovaError("x", "404 marked retryable", { status: 404, retryable: true }))).toBe(
      false,
    );
    expect(isRetryable(new Error("plain"))).toBe(false);
    expect(resolveRetryPolicy(undefined, undefined)).toEqual({ attempts: 1, backoffMs: 0 });
  });
});

describe("deadline", () => {
  it("ends timed_out when the run deadline passes, aborting the call in flight", async () => {
    servers.api.route("GET", "/glacial", { body: { ok: true }, delayMs: 1_500 });
    const document = toolDocument("/glacial");
    const started = Date.now();
    const result = await runProtocol({ document, protocol: "p", deadlineMs: 150, ports: servers.ports() });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result.status).toBe("timed_out");
    expect(result.error?.code).toBe("deadline");
    expect(result.steps[0]).toMatchObject({ status: "failed", error: { code: "deadline" } });
  });

  it("takes the protocol's deadline_ms, and stops a retry wait when the deadline passes", async () => {
    servers.api.route("GET", "/fails", { status: 500, body: "x" });
    const document = toolDocument(
      "/fails",
      { retry: { attempts: 5, backoff_ms: 2_000 } },
      {},
      { deadline_ms: 200 },
    );
    const started = Date.now();
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result.status).toBe("timed_out");
    expect(result.steps[0]?.attempts).toBe(1);
  });

  it("does not end a run early when its deadline is further away than a timer can wait", async () => {
    servers.api.route("GET", "/quick", { body: { ok: true }, delayMs: 30 });
    const thirtyDays = 30 * 24 * 3_600_000;
    const result = await runProtocol({
      document: toolDocument("/quick"),
      protocol: "p",
      deadlineMs: thirtyDays,
      ports: servers.ports(),
    });
    expect(result.status).toBe("completed");
  });

  it("carries the deadline across suspension", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "form",
          deadline_ms: 60_000,
          steps: [
            { id: "ask", action: "input", prompt: "Name?", variable: "name" },
            { id: "end", action: "end", response_template: "Hi {name}" },
          ],
        },
      ],
    });
    const time = controlledClock();
    const first = await runProtocol({
      document,
      protocol: "form",
      ports: servers.ports({ clock: time.clock }),
    });
    expect(first.status).toBe("waiting_input");
    expect(first.suspended?.deadlineAt).toBe(time.clock.now() + 60_000);
    const suspended = JSON.parse(JSON.stringify(first.suspended));

    time.advance(30_000);
    const inTime = await resumeRun({
      document,
      suspended,
      reply: "Ann",
      ports: servers.ports({ clock: time.clock }),
    });
    expect(inTime.status).toBe("completed");

    time.advance(31_000);
    const late = await resumeRun({
      document,
      suspended,
      reply: "Bob",
      ports: servers.ports({ clock: time.clock }),
    });
    expect(late.status).toBe("timed_out");
    expect(late.error?.code).toBe("deadline");
    expect(late.path).toEqual(["ask"]);
  });
});
