/** Keeping execution records within bounds: fitting steps, summarising long runs, paging steps. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExecutionRecordSchema } from "../../lib/core/execution-record.ts";
import {
  MAX_STEP_BYTES,
  PAGE_MAX_BYTES,
  PAGE_MAX_STEPS,
  SUMMARY_MAX_BYTES,
  SUMMARY_MAX_PATH_IDS,
  capOutputs,
  fitStep,
  pageSteps,
  summarizeRecord,
} from "../../lib/core/record-size.ts";
import { longExecution, sampleExecution } from "../support/runtime-fixtures.ts";

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
const withoutOutputs = (record: ReturnType<typeof sampleExecution>) => ({
  ...record,
  output: undefined,
  steps: record.steps.map(({ output: _output, ...step }) => step),
});

describe("summarizeRecord", () => {
  it("keeps a record that fits as it is", () => {
    const record = longExecution(40);
    expect(summarizeRecord(record)).toEqual(record);
  });

  it("keeps the first steps and path ids of a long run, with the whole run's counts", () => {
    const record = longExecution(3_000, {
      status: "failed",
      error: { code: "tool_http_status", message: "503" },
    });
    const summary = summarizeRecord(record);
    expect(ExecutionRecordSchema.parse(summary)).toEqual(summary);
    expect(summary.stepCount).toBe(3_000);
    expect(summary.steps.length).toBeGreaterThan(100);
    expect(summary.steps.length).toBeLessThan(3_000);
    expect(summary.steps).toEqual(record.steps.slice(0, summary.steps.length));
    expect(summary.pathLength).toBe(3_000);
    expect(summary.path).toEqual(record.path.slice(0, SUMMARY_MAX_PATH_IDS));
    // The step the run failed at is the last one, which the cut lists do not show.
    expect(summary.failedStepId).toBe("count");
    expect(bytes(withoutOutputs(summary))).toBeLessThanOrEqual(SUMMARY_MAX_BYTES);
    // Deterministic, and outputs do not move the cut: the history and the event keep the same steps.
    expect(summarizeRecord(record)).toEqual(summary);
    expect(summarizeRecord(capOutputs(record, 4)).steps.length).toBe(summary.steps.length);
  });

  it("summarises 100,000 steps within its budget", () => {
    const summary = summarizeRecord(longExecution(100_000));
    expect(summary.stepCount).toBe(100_000);
    expect(summary.failedStepId).toBeUndefined();
    expect(bytes(summary)).toBeLessThan(SUMMARY_MAX_BYTES + 100_000);
  });
});

describe("fitStep", () => {
  it("drops the output, then cuts the prompt of a step too large for a page, and marks both", () => {
    const step = {
      ...sampleExecution().steps[0]!,
      prompt: "é\n".repeat(200_000),
      output: "x".repeat(50_000),
    };
    const fitted = fitStep(step);
    expect(bytes(fitted)).toBeLessThanOrEqual(MAX_STEP_BYTES);
    expect(fitted.output).toBeUndefined();
    expect(fitted.outputTruncated).toBe(true);
    expect(fitted.promptTruncated).toBe(true);
    expect(step.prompt.startsWith(fitted.prompt!)).toBe(true);
    expect(fitStep(fitted)).toBe(fitted);
    const small = sampleExecution().steps[0]!;
    expect(fitStep(small)).toBe(small);
  });
});

describe("fitStep on a wide foreach step", () => {
  const foreachStep = (children: number, pathLength: number) => ({
    id: "each",
    action: "foreach",
    status: "succeeded" as const,
    attempts: 1,
    startedAt: "2030-01-01T00:00:00.000Z",
    durationMs: 10,
    children: Array.from({ length: children }, (_, index) => ({
      protocol: "lookup",
      index,
      status: "completed" as const,
      durationMs: 3,
      executionId: `ex_parent~each.1~${index}`,
      path: Array.from({ length: pathLength }, (_, i) => `step_${i}`),
    })),
  });

  it("drops the children's paths first, then keeps the first children that fit, with childCount", () => {
    const pathsOnly = fitStep(foreachStep(200, 40));
    expect(bytes(pathsOnly)).toBeLessThanOrEqual(MAX_STEP_BYTES);
    expect(pathsOnly.children).toHaveLength(200);
    expect(pathsOnly.children!.every((child) => child.path.length === 0)).toBe(true);
    expect(pathsOnly.childCount).toBeUndefined();

    const wide = fitStep(foreachStep(1_000, 5));
    expect(bytes(wide)).toBeLessThanOrEqual(MAX_STEP_BYTES);
    expect(wide.childCount).toBe(1_000);
    expect(wide.children!.length).toBeGreaterThan(100);
    expect(wide.children!.length).toBeLessThan(1_000);
    // The first ones, in order.
    expect(wide.children!.map((child) => child.index)).toEqual(wide.children!.map((_, index) => index));
    expect(ExecutionRecordSchema.shape.steps.element.parse(wide)).toEqual(wide);

    const narrow = foreachStep(3, 2);
    expect(fitStep(narrow)).toBe(narrow);
  });
});

describe("pageSteps", () => {
  const stepsArbitrary = fc.array(
    fc.record({
      id: fc.constantFrom("a", "b"),
      action: fc.constant("prompt"),
      status: fc.constant("succeeded" as const),
      attempts: fc.constant(1),
      startedAt: fc.constant("2030-01-01T00:00:00.000Z"),
      durationMs: fc.nat(),
      prompt: fc.nat({ max: 90_000 }).map((n) => "p".repeat(n)),
    }),
    { maxLength: 80 },
  );

  it("pages steps in order, within the page bounds, and appending changes only the last page", () => {
    fc.assert(
      fc.property(stepsArbitrary, fc.nat({ max: 30 }), (steps, extra) => {
        const pages = pageSteps(steps);
        expect(pages.flatMap((page) => page.steps)).toEqual(steps);
        let first = 0;
        for (const page of pages) {
          expect(page.first).toBe(first);
          expect(page.steps.length).toBeGreaterThan(0);
          expect(page.steps.length).toBeLessThanOrEqual(PAGE_MAX_STEPS);
          expect(Buffer.byteLength(page.json)).toBeLessThanOrEqual(PAGE_MAX_BYTES);
          expect(JSON.parse(page.json)).toEqual(page.steps);
          first += page.steps.length;
        }
        const longer = pageSteps([...steps, ...steps.slice(0, extra)]);
        expect(longer.slice(0, Math.max(0, pages.length - 1))).toEqual(pages.slice(0, -1));
      }),
      { numRuns: 60 },
    );
  });
});
