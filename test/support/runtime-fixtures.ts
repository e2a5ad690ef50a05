/** Shared fixtures of the runtime store tests: clients for a local stack and sample records. */
import { randomUUID } from "node:crypto";
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";
import type { NewSession } from "../../lib/core/ports.ts";

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
