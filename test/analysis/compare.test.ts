/** The version comparison's statistics against values worked out by hand (the arithmetic is in the comments). */
import { describe, expect, it } from "vitest";
import {
  compareLatency,
  compareMeans,
  compareProportions,
  compareVersions,
  mannWhitney,
} from "../../lib/analysis/compare.ts";
import { addExecution, createAggregate } from "../../lib/analysis/aggregate.ts";
import { LatencySketch } from "../../lib/analysis/sketch.ts";
import { ExecutionRecordSchema } from "../../lib/core/execution-record.ts";

const moments = (scores: number[]) => ({
  n: scores.length,
  sum: scores.reduce((a, b) => a + b, 0),
  sumSq: scores.reduce((a, b) => a + b * b, 0),
});

describe("two proportions", () => {
  it("45/100 against 60/100: pooled z-test", () => {
    // p̄ = 105/200 = 0.525; se = √(0.525 · 0.475 · (1/100 + 1/100)) = 0.0706222;
    // z = 0.15 / 0.0706222 = 2.12398; p = 2 · (1 − Φ(2.12398)) = 0.033672.
    const result = compareProportions("success_rate", { successes: 45, n: 100 }, { successes: 60, n: 100 });
    expect(result).toMatchObject({
      base: 0.45,
      candidate: 0.6,
      difference: 0.15,
      test: "two-proportion z-test",
      verdict: "better",
      moreRunsNeeded: 0,
    });
    expect(result.pValue).toBeCloseTo(0.033672, 5);
    const worse = compareProportions("success_rate", { successes: 60, n: 100 }, { successes: 45, n: 100 });
    expect(worse.verdict).toBe("worse");
    expect(worse.pValue).toBeCloseTo(0.033672, 5);
  });

  it("9/20 against 12/20 is inconclusive and says how many runs a verdict needs", () => {
    // se = √(0.525 · 0.475 · 0.1) = 0.157917; z = 0.94987; p = 0.342178.
    // n per version = (1.959964 · √(2 · 0.525 · 0.475) + 0.841621 · √(0.45 · 0.55 + 0.6 · 0.4))² / 0.15²
    //               = 172.8 → 173, of which 20 were run: 153 more.
    const result = compareProportions("success_rate", { successes: 9, n: 20 }, { successes: 12, n: 20 });
    expect(result.pValue).toBeCloseTo(0.342178, 5);
    expect(result.verdict).toBe("inconclusive");
    expect(result.moreRunsNeeded).toBe(153);
  });

  it("no verdict below the minimum of runs, however small p is", () => {
    const result = compareProportions("r", { successes: 0, n: 10 }, { successes: 10, n: 10 });
    expect(result.pValue).toBeLessThan(0.001);
    expect(result.verdict).toBe("inconclusive");
    expect(result.moreRunsNeeded).toBe(20);
  });

  it("nothing to compare: null values, inconclusive", () => {
    expect(compareProportions("r", { successes: 0, n: 0 }, { successes: 3, n: 5 })).toMatchObject({
      base: null,
      difference: null,
      pValue: null,
      verdict: "inconclusive",
      moreRunsNeeded: null,
    });
  });
});

describe("Welch's t-test", () => {
  it("[0.2, 0.4, 0.6] against [0.7, 0.8, 0.9]", () => {
    // means 0.4 and 0.8; variances 0.04 and 0.01; se = √(0.04/3 + 0.01/3) = 0.129099;
    // t = 0.4 / 0.129099 = 3.09839; df = 0.016667² / (0.013333²/2 + 0.003333²/2) = 2.94118;
    // p = 2 · (1 − T(3.09839; 2.94118)) = 0.054787.
    const result = compareMeans("feedback", moments([0.2, 0.4, 0.6]), moments([0.7, 0.8, 0.9]), true, 3);
    expect(result.test).toBe("Welch's t-test");
    expect(result.base).toBe(0.4);
    expect(result.candidate).toBe(0.8);
    expect(result.difference).toBe(0.4);
    expect(result.pValue).toBeCloseTo(0.054787, 5);
    expect(result.verdict).toBe("inconclusive");
    // (1.959964 + 0.841621)² · (0.04 + 0.01) / 0.4² = 2.4527 → the minimum of 3 runs is reached.
    expect(result.moreRunsNeeded).toBe(0);
  });

  it("lower is better for cost: a dearer candidate is worse", () => {
    const base = moments(Array.from({ length: 40 }, (_, i) => 1 + (i % 4) * 0.01));
    const candidate = moments(Array.from({ length: 40 }, (_, i) => 2 + (i % 4) * 0.01));
    expect(compareMeans("cost", base, candidate, false).verdict).toBe("worse");
    expect(compareMeans("cost", candidate, base, false).verdict).toBe("better");
  });
});

describe("Mann-Whitney U on sketch buckets", () => {
  it("[10..50] against [35..75]: U = 22, p = 0.047202", () => {
    // Candidate over base pairs: 35 beats 3, 45 beats 4, 55, 65 and 75 beat 5: U = 22.
    // μ = 12.5, σ² = 5 · 5 · 11 / 12 = 22.9167; z = 9.5 / 4.78714 = 1.98448; p = 0.047202.
    const result = mannWhitney(
      [10, 20, 30, 40, 50].map((v) => [v, 1]),
      [35, 45, 55, 65, 75].map((v) => [v, 1]),
    );
    expect(result?.u).toBe(22);
    expect(result?.pValue).toBeCloseTo(0.047202, 5);
  });

  it("corrects for ties: [10, 10, 20, 30] against [20, 30, 30, 40]: U = 13.5, p = 0.099425", () => {
    // Ranks: 10,10 → 1.5; 20,20 → 3.5; 30,30,30 → 6; 40 → 8. Candidate rank sum 3.5 + 6 + 6 + 8 = 23.5;
    // U = 23.5 − 10 = 13.5; ties t³ − t: 6 + 6 + 24 = 36; σ² = 16/12 · (9 − 36/56) = 11.1429;
    // z = 5.5 / 3.33809 = 1.64765; p = 0.099425.
    const result = mannWhitney(
      [
        [10, 2],
        [20, 1],
        [30, 1],
      ],
      [
        [20, 1],
        [30, 2],
        [40, 1],
      ],
    );
    expect(result?.u).toBe(13.5);
    expect(result?.pValue).toBeCloseTo(0.099425, 5);
  });

  it("a slower candidate is worse on latency", () => {
    const base = new LatencySketch();
    const candidate = new LatencySketch();
    for (let i = 0; i < 50; i++) {
      base.add(100 + i);
      candidate.add(200 + i);
    }
    const result = compareLatency("latency_p50_ms", 0.5, base, candidate);
    expect(result.test).toBe("Mann-Whitney U test");
    expect(result.verdict).toBe("worse");
    expect(result.difference).toBeGreaterThan(95);
  });
});

describe("compareVersions", () => {
  it("names every measure, each with its test", () => {
    const key = { tenant: "t", document: "d", protocol: "p" };
    const aggregate = (version: number, succeeded: number, unsuccessful: number) => {
      const a = createAggregate({ ...key, version });
      for (let i = 0; i < succeeded + unsuccessful; i++) {
        addExecution(
          a,
          ExecutionRecordSchema.parse({
            ...key,
            executionId: `e${i}`,
            documentVersion: version,
            trigger: "api",
            status: "completed",
            outcome: i < succeeded ? "succeeded" : "unsuccessful",
            startedAt: "2026-03-01T10:00:00.000Z",
            finishedAt: "2026-03-01T10:00:01.000Z",
            durationMs: 100,
            path: [],
            steps: [],
          }),
        );
      }
      return a;
    };
    const empty = { n: 0, sum: 0, sumSq: 0 };
    const measures = compareVersions(
      { aggregate: aggregate(1, 60, 40), feedback: empty, evaluator: empty },
      { aggregate: aggregate(2, 45, 55), feedback: empty, evaluator: empty },
    );
    expect(measures.map((m) => [m.measure, m.test])).toEqual([
      ["success_rate", "two-proportion z-test"],
      ["completion_rate", "two-proportion z-test"],
      ["feedback", "Welch's t-test"],
      ["evaluator_score", "Welch's t-test"],
      ["latency_p50_ms", "Mann-Whitney U test"],
      ["latency_p95_ms", "Mann-Whitney U test"],
      ["cost_per_run_usd", "Welch's t-test"],
    ]);
    expect(measures[0]).toMatchObject({ base: 0.6, candidate: 0.45, verdict: "worse" });
    expect(measures[1]).toMatchObject({ base: 1, candidate: 1, verdict: "inconclusive" });
  });
});
