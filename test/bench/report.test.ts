import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatTable, median, parseBenchArgs, percentile, round } from "../../bench/lib/report.ts";
import { isoOf, seededRandom, syntheticHistory } from "../../bench/support/synthetic-history.ts";
import { ExecutionRecordSchema } from "../../lib/core/execution-record.ts";

const KNOWN = ["concurrency", "engineOverhead", "analysis", "requestPath", "coldStart"];

describe("median and percentile", () => {
  it("takes the middle value, or the mean of the two middle ones", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it("interpolates percentiles between closest ranks", () => {
    const values = [10, 20, 30, 40, 50];
    expect(percentile(values, 0)).toBe(10);
    expect(percentile(values, 50)).toBe(30);
    expect(percentile(values, 100)).toBe(50);
    expect(percentile(values, 90)).toBeCloseTo(46);
    expect(percentile([1, 2], 25)).toBeCloseTo(1.25);
  });

  it("refuses empty inputs and percentiles out of range", () => {
    expect(() => median([])).toThrow(RangeError);
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  it("does not reorder its input", () => {
    const values = [3, 1, 2];
    median(values);
    percentile(values, 90);
    expect(values).toEqual([3, 1, 2]);
  });

  it("the 50th percentile is the median, and percentiles grow with p", () => {
    fc.assert(
      fc.property(
        // `+ 0` turns -0 into 0: the sort keeps 0 and -0 in input order, Math.min prefers -0.
        fc.array(
          fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((value) => value + 0),
          { minLength: 1, maxLength: 50 },
        ),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (values, p, q) => {
          expect(percentile(values, 50)).toBeCloseTo(median(values), 6);
          const [low, high] = p <= q ? [p, q] : [q, p];
          expect(percentile(values, low)).toBeLessThanOrEqual(percentile(values, high) + 1e-9);
          expect(percentile(values, 0)).toBe(Math.min(...values));
          expect(percentile(values, 100)).toBe(Math.max(...values));
        },
      ),
    );
  });

  it("rounds to the given decimals", () => {
    expect(round(1.23456, 2)).toBe(1.23);
    expect(round(1.235, 1)).toBe(1.2);
    expect(round(12.5, 0)).toBe(13);
  });
});

describe("formatTable", () => {
  it("aligns columns, numbers to the right, two decimals below 100 and one above", () => {
    const table = formatTable(
      ["mode", "ms"],
      [
        ["concurrent", 28.123],
        ["sequential", 2500.26],
      ],
    );
    expect(table.split("\n")).toEqual([
      "mode            ms",
      "----------  ------",
      "concurrent   28.12",
      "sequential  2500.3",
    ]);
  });

  it("keeps a column left-aligned when it mixes text and numbers", () => {
    const lines = formatTable(
      ["figure", "goal"],
      [
        ["seconds", "< 10"],
        ["rss", null],
      ],
    ).split("\n");
    expect(lines[2]).toBe("seconds  < 10");
    expect(lines[3]).toBe("rss      –");
  });
});

describe("parseBenchArgs", () => {
  it("reads --quick, --only (repeated or comma-separated), --out and --sequential-1000", () => {
    expect(
      parseBenchArgs(
        ["--quick", "--only", "analysis,coldStart", "--only=concurrency", "--out", "x.json"],
        KNOWN,
      ),
    ).toEqual({
      quick: true,
      only: ["analysis", "coldStart", "concurrency"],
      out: "x.json",
      sequential1000: false,
    });
    expect(parseBenchArgs(["--sequential-1000"], KNOWN).sequential1000).toBe(true);
    expect(parseBenchArgs([], KNOWN)).toEqual({
      quick: false,
      only: [],
      out: undefined,
      sequential1000: false,
    });
  });

  it("refuses unknown benchmarks, unknown flags and missing values", () => {
    expect(() => parseBenchArgs(["--only", "speed"], KNOWN)).toThrow(/unknown benchmark "speed"/);
    expect(() => parseBenchArgs(["--fast"], KNOWN)).toThrow(/unknown argument/);
    expect(() => parseBenchArgs(["--only"], KNOWN)).toThrow(/needs a value/);
  });
});

describe("the synthetic history", () => {
  it("formats times exactly as Date#toISOString", () => {
    const random = seededRandom(3);
    for (let index = 0; index < 2000; index += 1) {
      const ms = Math.floor(random() * 4e12);
      expect(isoOf(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it("yields valid execution records, the same ones for the same seed", () => {
    const first = [...syntheticHistory({ count: 300, seed: 11 })];
    const again = [...syntheticHistory({ count: 300, seed: 11 })];
    const other = [...syntheticHistory({ count: 300, seed: 12 })];
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
    for (const record of first) {
      expect(ExecutionRecordSchema.safeParse(record).success).toBe(true);
      expect(record.steps).toHaveLength(8);
      const ids = record.steps.map((step) => step.id);
      // A run waiting for input has entered the input step, which has no record until answered.
      if (record.status === "waiting_input") {
        expect(record.path).toEqual([...ids, "ask_details"]);
        expect(record.analysis).toBe("waiting");
      } else expect(record.path).toEqual(ids);
      // A failed step ends the run: only the last record may fail.
      const failed = record.steps.flatMap((step, at) => (step.status === "failed" ? [at] : []));
      expect(failed.every((at) => at === 7)).toBe(true);
      if (record.status === "completed") expect(failed).toEqual([]);
      if (record.status === "failed") expect(failed).toEqual([7]);
      if (record.status === "timed_out") expect(record.error?.code).toBe("deadline");
    }
    const statuses = new Set(first.map((record) => record.status));
    expect(statuses).toEqual(new Set(["completed", "failed", "timed_out", "waiting_input"]));
  });
});
