/**
 * Quality, tokens, cost and versions in the aggregate: counted from the records, kept through
 * the stored form, and each document version's aggregates merged equal the overall one.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addExecution,
  aggregateFromJSON,
  aggregateToJSON,
  createAggregate,
  mergeInto,
  recordKeyOf,
} from "../../lib/analysis/aggregate.ts";
import { aggregateExecutions, mergeVersions } from "../../lib/analysis/analyze.ts";
import { costFigures } from "../../lib/analysis/cost.ts";
import { computeStatistics } from "../../lib/analysis/statistics.ts";
import { type ExecutionRecord, ExecutionRecordSchema } from "../../lib/core/execution-record.ts";
import { MovaError } from "../../lib/errors.ts";

const KEY = { tenant: "acme", document: "support", protocol: "answer" };

interface RecordSpec {
  version?: number;
  status?: ExecutionRecord["status"];
  outcome?: "succeeded" | "unsuccessful" | "unknown";
  durationMs?: number;
  /** [model, prompt tokens, completion tokens] per prompt step. */
  usage?: Array<[string | undefined, number, number]>;
}

let sequence = 0;
function record(spec: RecordSpec): ExecutionRecord {
  const steps = (spec.usage ?? []).map(([model, prompt, completion], i) => ({
    id: `ask${i}`,
    action: "prompt",
    status: "succeeded",
    attempts: 1,
    startedAt: "2026-03-01T10:00:00.000Z",
    durationMs: 10,
    ...(model !== undefined ? { model } : {}),
    usage: { promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion },
  }));
  return ExecutionRecordSchema.parse({
    ...KEY,
    executionId: `e${sequence++}`,
    documentVersion: spec.version ?? 1,
    trigger: "api",
    status: spec.status ?? "completed",
    startedAt: "2026-03-01T10:00:00.000Z",
    finishedAt: "2026-03-01T10:00:01.000Z",
    durationMs: spec.durationMs ?? 100,
    path: steps.map((s) => s.id),
    steps,
    ...(spec.outcome ? { outcome: spec.outcome } : {}),
  });
}

function aggregateOf(records: readonly ExecutionRecord[], version?: number) {
  const aggregate = createAggregate({ ...KEY, version });
  for (const r of records) addExecution(aggregate, r);
  return aggregate;
}

describe("quality", () => {
  it("counts completed runs by outcome and gives the share of finished runs that succeeded", () => {
    const aggregate = aggregateOf([
      record({ outcome: "succeeded" }),
      record({ outcome: "succeeded" }),
      record({ outcome: "succeeded" }),
      record({ outcome: "unsuccessful" }),
      record({ status: "failed" }),
      record({ status: "waiting_input" }),
    ]);
    const statistics = computeStatistics(aggregate);
    // 3 succeeded of 5 finished runs (3 + 1 unsuccessful + 1 failed); 4 completed of 5.
    expect(statistics.quality).toEqual({ succeeded: 3, unsuccessful: 1, unknown: 0, successRate: 0.6 });
    expect(statistics.completionRate).toBe(0.8);
  });

  it("has no success rate without criteria: the completed runs are unknown", () => {
    const statistics = computeStatistics(aggregateOf([record({}), record({ outcome: "unknown" })]));
    expect(statistics.quality).toEqual({ succeeded: 0, unsuccessful: 0, unknown: 2, successRate: null });
    expect(statistics.completionRate).toBe(1);
  });
});

describe("tokens and cost", () => {
  const prices = {
    "gpt-4o-mini": { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 },
    big: { inputPerMillionUsd: 5, outputPerMillionUsd: 15 },
  };

  it("prices each model's tokens per million, per step, and per run", () => {
    const aggregate = aggregateOf([
      record({ usage: [["gpt-4o-mini", 1000, 200]] }),
      record({ usage: [["gpt-4o-mini", 3000, 600]] }),
    ]);
    const cost = costFigures(aggregate, prices);
    // (4000 × 0.15 + 800 × 0.6) / 1e6 = 0.00108 dollars.
    expect(cost.cost).toBe(0.00108);
    expect(cost.promptTokens).toBe(4000);
    expect(cost.completionTokens).toBe(800);
    expect(cost.costPerRun).toBe(0.00054);
    // Run costs 0.00027 and 0.00081: sample sd = 0.00054 / √2.
    expect(cost.costPerRunSd).toBeCloseTo(0.00054 / Math.SQRT2, 8);
    expect(cost.unpriced).toEqual([]);
    const step = computeStatistics(aggregate, undefined, prices).steps[0]!;
    expect(step).toMatchObject({
      model: "gpt-4o-mini",
      promptTokens: 4000,
      completionTokens: 800,
      cost: 0.00108,
    });
  });

  it("leaves the cost unknown, never zero, when a model is not priced", () => {
    const aggregate = aggregateOf([
      record({
        usage: [
          ["gpt-4o-mini", 1000, 0],
          ["mystery", 10, 10],
        ],
      }),
    ]);
    const cost = costFigures(aggregate, prices);
    expect(cost.cost).toBeNull();
    expect(cost.costPerRun).toBeNull();
    expect(cost.unpriced).toEqual(["mystery"]);
    expect(cost.models.find((m) => m.model === "gpt-4o-mini")?.cost).toBe(0.00015);
    expect(costFigures(aggregate, undefined).cost).toBeNull();
    // A step that names no model is never priced.
    expect(costFigures(aggregateOf([record({ usage: [[undefined, 5, 5]] })]), prices).unpriced).toEqual([
      "(none)",
    ]);
  });

  it("costs nothing when no tokens were used", () => {
    expect(costFigures(aggregateOf([record({})]), prices)).toMatchObject({ cost: 0, costPerRun: 0 });
  });
});

describe("versions", () => {
  it("refuses a record of another version, and a merge of another version into a version", () => {
    const v1 = createAggregate({ ...KEY, version: 1 });
    expect(() => addExecution(v1, record({ version: 2 }))).toThrow(MovaError);
    expect(() => mergeInto(v1, aggregateOf([record({ version: 2 })], 2))).toThrow(MovaError);
    // Every version's aggregate takes any version.
    expect(() => mergeInto(createAggregate(KEY), aggregateOf([record({ version: 2 })], 2))).not.toThrow();
  });

  it("keeps its version, quality and tokens through the stored form; a bucket stored before them reads as empty", () => {
    const aggregate = aggregateOf([record({ version: 3, outcome: "succeeded", usage: [["m", 7, 3]] })], 3);
    const json = aggregateToJSON(aggregate);
    expect(json.documentVersion).toBe(3);
    const copy = aggregateFromJSON(JSON.parse(JSON.stringify(json)));
    expect(copy.version).toBe(3);
    expect(aggregateToJSON(copy)).toEqual(json);
    const { quality: _q, models: _m, runTokens: _r, documentVersion: _v, ...legacy } = json;
    const old = aggregateFromJSON({
      ...legacy,
      steps: {
        e: Object.fromEntries(Object.entries(json.steps.e).map(([k, s]) => [k, { ...s, model: undefined }])),
      },
    });
    expect(old.version).toBeUndefined();
    expect(old.quality).toEqual({ succeeded: 0, unsuccessful: 0, unknown: 0 });
  });

  const versionedRecord = fc
    .record({
      version: fc.integer({ min: 1, max: 4 }),
      status: fc.constantFrom("completed", "completed", "failed", "timed_out", "waiting_input"),
      outcome: fc.constantFrom("succeeded", "unsuccessful", "unknown", undefined),
      durationMs: fc.integer({ min: 0, max: 60_000 }),
      usage: fc.array(
        fc.tuple(fc.constantFrom("gpt-4o-mini", "big", undefined), fc.nat(5000), fc.nat(2000)),
        { maxLength: 3 },
      ),
    })
    .map((r) =>
      record({
        version: r.version,
        status: r.status as ExecutionRecord["status"],
        ...(r.status === "completed" && r.outcome ? { outcome: r.outcome as "succeeded" } : {}),
        durationMs: r.durationMs,
        usage: r.usage,
      }),
    );

  it("each version's figures merged equal the overall figures", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(versionedRecord, { maxLength: 60 }), async (records) => {
        const now = new Date("2026-03-02T00:00:00Z");
        const perVersion = await aggregateExecutions(records, { byVersion: true, now });
        const overall = await aggregateExecutions(records, { now });
        for (const a of perVersion.aggregates) {
          for (const r of records.filter((x) => x.documentVersion === a.version))
            expect(recordKeyOf(r).version).toBe(a.version);
        }
        const merged = mergeVersions(perVersion.aggregates);
        expect(merged.length).toBe(overall.aggregates.length);
        if (merged.length === 0) return;
        const prices = {
          "gpt-4o-mini": { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 },
          big: { inputPerMillionUsd: 5, outputPerMillionUsd: 15 },
        };
        expect(computeStatistics(merged[0]!, undefined, prices)).toEqual(
          computeStatistics(overall.aggregates[0]!, undefined, prices),
        );
        expect(JSON.stringify(aggregateToJSON(merged[0]!))).toBe(
          JSON.stringify(aggregateToJSON(overall.aggregates[0]!)),
        );
        // Every run is in exactly one version.
        const total = perVersion.aggregates.reduce((sum, a) => sum + a.executions, 0);
        expect(total).toBe(records.length);
      }),
      { numRuns: 100 },
    );
  });
});
