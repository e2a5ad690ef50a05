import { MovaError } from "../../lib/errors.ts";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatencySketch, MAX_BUCKETS } from "../../lib/analysis/sketch.ts";
import { seededRandom } from "../support/seeded-random.ts";

const ALPHA = 0.01;
/** The stated bound, with room for floating-point rounding only. */
const BOUND = ALPHA * (1 + 1e-9);

function sketchOf(values: readonly number[]): LatencySketch {
  const sketch = new LatencySketch();
  for (const v of values) sketch.add(v);
  return sketch;
}

/** The quantile the sketch estimates: the value of rank ⌊q·(n − 1)⌋. */
function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

function logNormal(random: () => number, median: number, sigma: number): number {
  const u = 1 - random();
  const v = random();
  return median * Math.exp(sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
}

function expectWithinBound(estimate: number | undefined, exact: number): void {
  expect(estimate).toBeDefined();
  expect(Math.abs(estimate! - exact)).toBeLessThanOrEqual(BOUND * exact);
}

const latencies = fc.array(fc.double({ min: 0.01, max: 200, noNaN: true }), { minLength: 1, maxLength: 300 });

describe("LatencySketch accuracy", () => {
  it("estimates every quantile within 1% of the exact one on random data", () => {
    fc.assert(
      fc.property(latencies, fc.double({ min: 0, max: 1, noNaN: true }), (values, q) => {
        const sorted = [...values].sort((a, b) => a - b);
        expectWithinBound(sketchOf(values).quantile(q), exactQuantile(sorted, q));
      }),
      { numRuns: 300 },
    );
  });

  it("holds the bound on 100,000 log-normal latencies at the usual percentiles", () => {
    const random = seededRandom(42);
    // σ = 0.9: p99/p50 ≈ 8, a wide but realistic spread of request latencies.
    const values = Array.from({ length: 100_000 }, () => logNormal(random, 250, 0.9));
    const sketch = sketchOf(values);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1]) {
      expectWithinBound(sketch.quantile(q), exactQuantile(sorted, q));
    }
    expect(sketch.count).toBe(100_000);
    expect(sketch.min).toBe(sorted[0]);
    expect(sketch.max).toBe(sorted[sorted.length - 1]);
    // Compact enough to store many in one DynamoDB item.
    expect(JSON.stringify(sketch.toJSON()).length).toBeLessThan(4_000);
  });

  it("keeps count, min, max exact and the sum exact to the microsecond", () => {
    const sketch = sketchOf([12.5, 3, 40.0004, 0]);
    expect(sketch.count).toBe(4);
    expect(sketch.min).toBe(0);
    expect(sketch.max).toBe(40.0004);
    // 12.5 + 3 + 40.0004 + 0 = 55.5004 ms = 55,500.4 µs → 55,500 µs once each value is rounded to µs.
    expect(sketch.sum).toBe(55.5);
    expect(sketch.mean).toBe(55.5 / 4);
  });

  it("counts values under a microsecond as zero and returns the exact extremes for q = 0 and 1", () => {
    const sketch = sketchOf([0, 0, 0.0005, 10]);
    expect(sketch.quantile(0)).toBe(0);
    expect(sketch.quantile(0.5)).toBe(0); // rank ⌊0.5·3⌋ = 1: a zero
    expect(sketch.quantile(1)).toBe(10); // clamped to the exact max
  });

  it("beyond 512 buckets only the values below max / 27,000 lose precision", () => {
    const random = seededRandom(7);
    // 0.1 µs … 1 s: seven orders of magnitude, far more than 512 buckets (4.4 orders) span.
    const values = Array.from({ length: 20_000 }, () => 10 ** (-4 + 7 * random()));
    const sketch = sketchOf(values);
    const json = sketch.toJSON();
    expect(json.c.split(",").length).toBeLessThanOrEqual(MAX_BUCKETS);
    const sorted = [...values].sort((a, b) => a - b);
    const gamma = (1 + ALPHA) / (1 - ALPHA);
    const reliableFrom = sketch.max! / gamma ** (MAX_BUCKETS - 1);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = exactQuantile(sorted, q);
      expect(exact).toBeGreaterThan(reliableFrom);
      expectWithinBound(sketch.quantile(q), exact);
    }
    // The folded low values (above the 1 µs zero threshold) read too high, never too low:
    // q = 0.2 is about 10^(−4 + 7·0.2) ≈ 0.0025 ms, below max / 27,000 ≈ 0.037 ms.
    const folded = exactQuantile(sorted, 0.2);
    expect(folded).toBeLessThan(reliableFrom);
    expect(folded).toBeGreaterThan(0.001);
    expect(sketch.quantile(0.2)!).toBeGreaterThan(folded * (1 + ALPHA));
  });

  it("returns undefined for an empty sketch", () => {
    const sketch = new LatencySketch();
    expect(sketch.quantile(0.5)).toBeUndefined();
    expect(sketch.min).toBeUndefined();
    expect(sketch.mean).toBeUndefined();
  });
});

describe("LatencySketch merging", () => {
  it("merging equals adding everything to one sketch", () => {
    fc.assert(
      fc.property(latencies, latencies, (a, b) => {
        const merged = sketchOf(a).merge(sketchOf(b));
        expect(merged.toJSON()).toEqual(sketchOf([...a, ...b]).toJSON());
      }),
      { numRuns: 200 },
    );
  });

  it("gives identical JSON whatever the order and grouping of the merges", () => {
    const groups = fc.array(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { maxLength: 40 }), {
      minLength: 1,
      maxLength: 12,
    });
    fc.assert(
      fc.property(groups, fc.infiniteStream(fc.nat()), (parts, choices) => {
        const reference = JSON.stringify(sketchOf(parts.flat()).toJSON());
        // Merge a random pair of the remaining sketches until one is left: any tree, any order.
        const pool = parts.map((p) => sketchOf(p));
        const pick = choices[Symbol.iterator]();
        while (pool.length > 1) {
          const i = pick.next().value! % pool.length;
          const [left] = pool.splice(i, 1);
          const j = pick.next().value! % pool.length;
          const right = pool[j]!;
          pool[j] = pick.next().value! % 2 === 0 ? left!.merge(right) : right.merge(left!);
        }
        expect(JSON.stringify(pool[0]!.toJSON())).toBe(reference);
      }),
      { numRuns: 200 },
    );
  });

  it("merges sketches whose ranges overflow the bucket limit the same in any order", () => {
    const random = seededRandom(11);
    const low = Array.from({ length: 500 }, () => 0.001 + random() * 0.01);
    const high = Array.from({ length: 500 }, () => 1e5 + random() * 1e5);
    const a = sketchOf(low).merge(sketchOf(high)).toJSON();
    const b = sketchOf(high).merge(sketchOf(low)).toJSON();
    expect(b).toEqual(a);
    expect(a).toEqual(sketchOf([...high, ...low]).toJSON());
  });

  it("stores a value just under 1 ms (bucket −0) the same as it reads back", () => {
    const sketch = sketchOf([0.995]);
    expect(LatencySketch.fromJSON(JSON.parse(JSON.stringify(sketch.toJSON()))).toJSON()).toEqual(
      sketch.toJSON(),
    );
  });

  it("keeps bucket counts exact past 2^31 values: adding across it, merging past it, reading one past it", () => {
    const INT32_MAX = 2 ** 31 - 1;
    const bucketOf10ms = sketchOf([10]).toJSON().o;
    // One bucket holding `n` values of 10 ms, as a stored sketch would have it.
    const full = (n: number) =>
      LatencySketch.fromJSON({
        v: 1,
        a: 0.01,
        n,
        z: 0,
        min: 10,
        max: 10,
        s: n * 10_000,
        o: bucketOf10ms,
        c: n.toString(36),
      });
    const countOf = (sketch: LatencySketch) => Number.parseInt(sketch.toJSON().c, 36);

    const crossing = full(INT32_MAX);
    crossing.add(10);
    crossing.add(10);
    expect(crossing.count).toBe(INT32_MAX + 2);
    expect(countOf(crossing)).toBe(INT32_MAX + 2);

    const merged = full(2 ** 31 - 5).merge(full(2 ** 31 - 7));
    expect(countOf(merged)).toBe(2 ** 32 - 12);
    merged.add(10);
    expect(countOf(merged)).toBe(2 ** 32 - 11);

    const stored = full(2 ** 35);
    stored.add(10);
    expect(countOf(stored)).toBe(2 ** 35 + 1);
    expect(stored.quantile(0.5)).toBe(10);
  });

  it("round-trips through JSON", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { maxLength: 200 }), (values) => {
        const sketch = sketchOf(values);
        const copy = LatencySketch.fromJSON(JSON.parse(JSON.stringify(sketch.toJSON())));
        expect(copy.toJSON()).toEqual(sketch.toJSON());
        for (const q of [0, 0.5, 0.99, 1]) expect(copy.quantile(q)).toBe(sketch.quantile(q));
      }),
    );
  });
});

describe("LatencySketch bad input", () => {
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(MovaError);
      return (error as MovaError).code;
    }
    return undefined;
  };

  it("refuses negative, NaN and infinite latencies and leaves the sketch unchanged", () => {
    const sketch = sketchOf([5]);
    const before = JSON.stringify(sketch.toJSON());
    expect(codeOf(() => sketch.add(-1))).toBe("invalid_value");
    expect(codeOf(() => sketch.add(Number.NaN))).toBe("invalid_value");
    expect(codeOf(() => sketch.add(Number.POSITIVE_INFINITY))).toBe("invalid_value");
    expect(JSON.stringify(sketch.toJSON())).toBe(before);
  });

  it("refuses quantiles outside [0, 1] and sketches of another accuracy", () => {
    expect(codeOf(() => sketchOf([1]).quantile(1.5))).toBe("invalid_quantile");
    expect(codeOf(() => sketchOf([1]).merge(new LatencySketch(0.02)))).toBe("incompatible_sketch");
  });

  it("refuses stored sketches that do not add up", () => {
    const good = sketchOf([1, 2, 3]).toJSON();
    expect(codeOf(() => LatencySketch.fromJSON(null))).toBe("invalid_sketch");
    expect(codeOf(() => LatencySketch.fromJSON({ ...good, n: 4 }))).toBe("invalid_sketch");
    expect(codeOf(() => LatencySketch.fromJSON({ ...good, c: "1,x!" }))).toBe("invalid_sketch");
    expect(codeOf(() => LatencySketch.fromJSON({ ...good, v: 2 }))).toBe("invalid_sketch");
    expect(codeOf(() => LatencySketch.fromJSON({ ...good, min: 5, max: 1 }))).toBe("invalid_sketch");
    expect(codeOf(() => LatencySketch.fromJSON({ ...good, c: `,${good.c}` }))).toBe("invalid_sketch");
  });
});
