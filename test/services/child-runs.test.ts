/** A leg's children as execution records: what each keeps, and the bound on what a leg holds. */
import { describe, expect, it } from "vitest";
import { createChildRunCollector } from "../../lib/services/child-runs.ts";
import { ExecutionRecordSchema } from "../../lib/core/execution-record.ts";
import type { ChildRunEnded, RunResult, StepRecord } from "../../lib/core/run.ts";
import { MovaDocument } from "../../lib/mova/schema.ts";

const document = MovaDocument.parse({
  version: "2.2",
  protocols: [
    { name: "main", steps: [{ id: "each", action: "foreach", items: "{xs}", protocol: "child" }] },
    {
      name: "child",
      success: [{ variable: "line", operator: "exists" }],
      steps: [{ id: "write", action: "prompt", prompt: "hi {item}", output: "line" }],
    },
  ],
});

const parent = {
  tenant: "t1",
  document: "team",
  documentVersion: 3,
  trigger: "api" as const,
  sessionId: "s1",
};

function step(prompt: string): StepRecord {
  return {
    id: "write",
    action: "prompt",
    status: "succeeded",
    attempts: 1,
    startedAt: "2030-01-01T00:00:00.000Z",
    durationMs: 4,
    prompt,
    output: "line",
    outputVariable: "line",
  };
}

function ended(index: number, overrides: Partial<RunResult> = {}): ChildRunEnded {
  const result: RunResult = {
    status: "completed",
    protocol: "child",
    output: `line ${index}`,
    variables: { item: index, line: `line ${index}` },
    steps: [step(`hi ${index} ${"x".repeat(1_000)}`)],
    path: ["write"],
    unresolved: [],
    replies: [],
    startedAt: "2030-01-01T00:00:00.000Z",
    finishedAt: "2030-01-01T00:00:00.004Z",
    durationMs: 4,
    offline: false,
    ...overrides,
  };
  return {
    executionId: `ex_p~each.1~${index}`,
    parentExecutionId: "ex_p",
    parentStep: "each",
    parentVisit: 1,
    index,
    result,
  };
}

describe("the child run collector", () => {
  it("makes a finished record of each child, linked to its parent, judged by its own protocol", () => {
    const collector = createChildRunCollector(parent, document);
    collector.onChildRun(ended(0));
    collector.onChildRun(
      ended(1, {
        status: "waiting_input",
        output: undefined,
        waitingFor: { stepId: "w", prompt: "?", variable: "v" },
      }),
    );
    const [done, waited] = collector.take();
    expect(ExecutionRecordSchema.parse(done)).toEqual(done);
    expect(done).toMatchObject({
      tenant: "t1",
      executionId: "ex_p~each.1~0",
      document: "team",
      documentVersion: 3,
      protocol: "child",
      trigger: "api",
      sessionId: "s1",
      parentExecutionId: "ex_p",
      parentStep: "each",
      parentVisit: 1,
      itemIndex: 0,
      status: "completed",
      outcome: "succeeded",
      output: "line 0",
      analysis: "published",
    });
    expect(done!.steps[0]!.prompt).toContain("hi 0");
    // The child's variables are not kept.
    expect(JSON.stringify(done)).not.toContain('"variables"');
    // A child that waited failed its parent's step: it is recorded finished, failed.
    expect(waited).toMatchObject({ status: "failed", error: { code: "child_not_finished" } });
    expect(collector.take()).toEqual([]);
  });

  it("keeps step records up to its bound; past it a child keeps its path and status, and says what it dropped", () => {
    const collector = createChildRunCollector(parent, document, 5_000);
    for (let index = 0; index < 10; index++) collector.onChildRun(ended(index));
    const records = collector.take();
    expect(records).toHaveLength(10);
    const kept = records.filter((record) => record.stepsDropped === undefined);
    expect(kept.length).toBeGreaterThan(1);
    expect(kept.length).toBeLessThan(10);
    const held = kept.reduce(
      (sum, record) =>
        sum +
        Buffer.byteLength(JSON.stringify(record.steps)) +
        Buffer.byteLength(JSON.stringify(record.output)),
      0,
    );
    expect(held).toBeLessThanOrEqual(5_000);
    const dropped = records.at(-1)!;
    expect(dropped).toMatchObject({
      steps: [],
      stepsDropped: 1,
      path: ["write"],
      status: "completed",
      outputTruncated: true,
    });
    expect(dropped.output).toBeUndefined();
    expect(ExecutionRecordSchema.parse(dropped)).toEqual(dropped);
    // The bound is per take: the next leg starts with all of it.
    collector.onChildRun(ended(11));
    expect(collector.take()[0]!.stepsDropped).toBeUndefined();
  });
});
