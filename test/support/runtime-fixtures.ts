/** Shared fixtures of the runtime store tests: clients for a local stack and sample records. */
import { randomUUID } from "node:crypto";
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";
import type { NewSession } from "../../lib/ports.ts";

export const uniqueTenant = (label: string) => `t-${label}-${randomUUID().slice(0, 8)}`;

export function sampleExecution(overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  const finishedAt = overrides.finishedAt ?? new Date().toISOString();
  return {
    tenant: "acme",
    executionId: randomUUID(),
    document: "support",
    documentVersion: 1,
    protocol: "refund",
    trigger: "api",
    status: "completed",
    startedAt: finishedAt,
    finishedAt,
    durationMs: 12,
    path: ["ask", "answer"],
    steps: [
      {
        id: "answer",
        action: "prompt",
        status: "succeeded",
        attempts: 1,
        startedAt: finishedAt,
        durationMs: 10,
        output: "fine",
        prompt: "say fine",
      },
    ],
    unresolved: [],
    offline: false,
    analysis: "published",
    ...overrides,
  };
}

/**
 * A long run's record: `steps` step records (a condition loop `check`/`count` around a tool
 * call, each with a small output), its path the ids in order, the last step failed when the
 * run failed.
 */
export function longExecution(steps: number, overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  const record = sampleExecution(overrides);
  const start = Date.parse(record.startedAt);
  record.steps = Array.from({ length: steps }, (_, n) => ({
    id: n % 2 === 0 ? "check" : "count",
    action: n % 2 === 0 ? "condition" : "tool_api",
    status: "succeeded" as const,
    attempts: n % 2 === 0 ? 1 : 1 + (n % 3),
    startedAt: new Date(start + n).toISOString(),
    durationMs: n % 7,
    ...(n % 2 === 0 ? { branch: "then" as const } : { toolId: "counter", httpStatus: 200, output: { n } }),
  }));
  if (record.status === "failed" && steps > 0) {
    record.steps[steps - 1] = {
      ...record.steps[steps - 1]!,
      status: "failed",
      error: { code: "tool_http_status", message: "503" },
    };
  }
  record.path = record.steps.map((step) => step.id);
  return { ...record, ...overrides, steps: record.steps, path: record.path };
}

export function sampleSession(tenant: string, overrides: Partial<NewSession> = {}): NewSession {
  return {
    sessionId: randomUUID(),
    tenant,
    document: "support",
    documentVersion: 1,
    userId: "user-1",
    data: { list: [], nested: { empty: {} } },
    ...overrides,
  };
}
