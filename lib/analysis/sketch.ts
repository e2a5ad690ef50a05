/**
 * A mergeable latency sketch in the manner of DDSketch (Masson, Rim, Lee, VLDB 2019):
 * log-spaced buckets whose counts add exactly, so merging is commutative and associative
 * and the incremental and the batch analysis agree bucket for bucket.
 *
 * Error bound. With relative accuracy α (default 0.01) and γ = (1 + α) / (1 − α), a value
 * x > 0 falls in bucket k = ⌈log_γ x⌉, which holds (γ^(k−1), γ^k]; the bucket reports
 * 2γ^k / (γ + 1), within α·x of every value in it. `quantile(q)` takes the value of rank
 * ⌊q·(n − 1)⌋ (0-based, "lower" quantile) exactly and reports it within that relative error
 * (plus floating-point rounding, far below 1e-9 relative), clamped to the exact min and max.
 * Exceptions, both stated in the JSON and rarely reached:
 * - values below ZERO_THRESHOLD_MS (1 µs) are counted as zero;
 * - at most MAX_BUCKETS (512) buckets are kept: when the values span more than
 *   γ^511 ≈ 27,000× (at α = 1%), the lowest buckets fold into the lowest kept one, so only
 *   quantiles whose value is below max / 27,000 lose the bound (they read too high).
 * Count, min and max are exact; the sum is exact in whole microseconds.
 */
import { AnalysisError } from "./errors.ts";

export const DEFAULT_RELATIVE_ACCURACY = 0.01;
export const MAX_BUCKETS = 512;
export const ZERO_THRESHOLD_MS = 0.001;

/** Compact stored form: counts as base-36 integers joined by commas, an empty bucket written as "". */
export interface LatencySketchJson {
  v: 1;
  /** Relative accuracy α. */
  a: number;
  /** Values added. */
  n: number;
  /** Values below ZERO_THRESHOLD_MS. */
  z: number;
  min?: number;
  max?: number;
  /** Sum of the values in whole microseconds. */
  s: number;
  /** Index of the first bucket in `c`. */
  o: number;
  c: string;
}

export class LatencySketch {
  readonly relativeAccuracy: number;
  private readonly gamma: number;
  private readonly inverseLogGamma: number;
  /** counts[i] is the count of bucket offset + i; the first and last are never 0. */
  private counts: number[] = [];
  private offset = 0;
  private total = 0;
  private zeroCount = 0;
  private minimum = Number.POSITIVE_INFINITY;
  private maximum = Number.NEGATIVE_INFINITY;
  private sumMicros = 0;

  constructor(relativeAccuracy: number = DEFAULT_RELATIVE_ACCURACY) {
    if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) {
      throw new AnalysisError(
        "invalid_sketch",
        `relative accuracy must be in (0, 1), got ${relativeAccuracy}`,
      );
    }
    this.relativeAccuracy = relativeAccuracy;
    this.gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy);
    this.inverseLogGamma = 1 / Math.log(this.gamma);
  }

  get count(): number {
    return this.total;
  }
  get min(): number | undefined {
    return this.total === 0 ? undefined : this.minimum;
  }
  get max(): number | undefined {
    return this.total === 0 ? undefined : this.maximum;
  }
  /** The sum of the values, exact to the microsecond. */
  get sum(): number {
    return this.sumMicros / 1000;
  }
  get mean(): number | undefined {
    return this.total === 0 ? undefined : this.sumMicros / 1000 / this.total;
  }

  add(ms: number): void {
    if (!(ms >= 0) || ms === Number.POSITIVE_INFINITY) {
      throw new AnalysisError("invalid_value", `a latency must be a finite number ≥ 0, got ${ms}`);
    }
    this.total += 1;
    this.sumMicros += Math.round(ms * 1000);
    if (ms < this.minimum) this.minimum = ms;
    if (ms > this.maximum) this.maximum = ms;
    if (ms < ZERO_THRESHOLD_MS) {
      this.zeroCount += 1;
      return;
    }
    // `| 0`: an index of −0 would store as 0 and read back unequal.
    const index = Math.ceil(Math.log(ms) * this.inverseLogGamma) | 0;
    const slot = index - this.offset;
    if (slot >= 0 && slot < this.counts.length) this.counts[slot]! += 1;
    else this.placeOutside(index);
  }

  /** Adds every value of `other` to this sketch. */
  merge(other: LatencySketch): this {
    if (other.relativeAccuracy !== this.relativeAccuracy) {
      throw new AnalysisError(
        "incompatible_sketch",
        `cannot merge sketches of relative accuracy ${this.relativeAccuracy} and ${other.relativeAccuracy}`,
      );
    }
    if (other.total === 0) return this;
    this.total += other.total;
    this.zeroCount += other.zeroCount;
    this.sumMicros += other.sumMicros;
    if (other.minimum < this.minimum) this.minimum = other.minimum;
    if (other.maximum > this.maximum) this.maximum = other.maximum;
    if (other.counts.length === 0) return this;
    if (this.counts.length === 0) {
      this.counts = other.counts.slice();
      this.offset = other.offset;
      return this;
    }
    const low = Math.min(this.offset, other.offset);
    const high = Math.max(this.offset + this.counts.length, other.offset + other.counts.length) - 1;
    const boundary = Math.max(low, high - MAX_BUCKETS + 1);
    const merged = new Array<number>(high - boundary + 1).fill(0);
    for (const source of [this as LatencySketch, other]) {
      for (let i = 0; i < source.counts.length; i++) {
        merged[Math.max(source.offset + i, boundary) - boundary]! += source.counts[i]!;
      }
    }
    this.counts = merged;
    this.offset = boundary;
    return this;
  }

  /** The value of rank ⌊q·(n − 1)⌋, within the relative accuracy; undefined when empty. */
  quantile(q: number): number | undefined {
    if (!(q >= 0 && q <= 1))
      throw new AnalysisError("invalid_quantile", `a quantile must be in [0, 1], got ${q}`);
    if (this.total === 0) return undefined;
    const rank = Math.floor(q * (this.total - 1));
    let seen = this.zeroCount;
    let value: number | undefined;
    if (rank < seen) value = 0;
    else {
      for (let i = 0; i < this.counts.length; i++) {
        seen += this.counts[i]!;
        if (seen > rank) {
          value = (2 * this.gamma ** (this.offset + i)) / (this.gamma + 1);
          break;
        }
      }
    }
    // Unreachable while counts add up to the total; kept so a bad state cannot return undefined.
    if (value === undefined) value = this.maximum;
    return Math.min(this.maximum, Math.max(this.minimum, value));
  }

  clone(): LatencySketch {
    return new LatencySketch(this.relativeAccuracy).merge(this);
  }

  toJSON(): LatencySketchJson {
    const json: LatencySketchJson = {
      v: 1,
      a: this.relativeAccuracy,
      n: this.total,
      z: this.zeroCount,
      s: 0,
      o: 0,
      c: "",
    };
    if (this.total > 0) {
      json.min = this.minimum;
      json.max = this.maximum;
    }
    json.s = this.sumMicros;
    json.o = this.counts.length === 0 ? 0 : this.offset;
    json.c = this.counts.map((n) => (n === 0 ? "" : n.toString(36))).join(",");
    return json;
  }

  static fromJSON(input: unknown): LatencySketch {
    const fail = (why: string): never => {
      throw new AnalysisError("invalid_sketch", `stored latency sketch is invalid: ${why}`);
    };
    if (typeof input !== "object" || input === null) return fail("not an object");
    const json = input as Partial<LatencySketchJson>;
    if (json.v !== 1) fail(`unknown version ${String(json.v)}`);
    const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
    if (typeof json.a !== "number") return fail("relative accuracy missing");
    if (!isCount(json.n) || !isCount(json.z) || !isCount(json.s)) return fail("counts must be integers ≥ 0");
    if (typeof json.o !== "number" || !Number.isSafeInteger(json.o)) return fail("offset must be an integer");
    if (typeof json.c !== "string" || !/^[0-9a-z,]*$/.test(json.c)) return fail("bucket counts malformed");
    const sketch = new LatencySketch(json.a);
    const counts =
      json.c === "" ? [] : json.c.split(",").map((part) => (part === "" ? 0 : Number.parseInt(part, 36)));
    if (counts.length > MAX_BUCKETS) fail(`more than ${MAX_BUCKETS} buckets`);
    if (counts.length > 0 && (counts[0] === 0 || counts[counts.length - 1] === 0)) fail("edge bucket empty");
    let bucketed = 0;
    for (const n of counts) {
      if (!Number.isSafeInteger(n)) fail("bucket count malformed");
      bucketed += n;
    }
    if (bucketed + json.z !== json.n) fail("bucket counts do not add up to n");
    if (json.n > 0) {
      const { min, max } = json;
      if (
        typeof min !== "number" ||
        typeof max !== "number" ||
        !(min >= 0 && min <= max && Number.isFinite(max))
      ) {
        fail("min and max must be 0 ≤ min ≤ max");
      }
      sketch.minimum = min as number;
      sketch.maximum = max as number;
    }
    sketch.counts = counts;
    sketch.offset = counts.length === 0 ? 0 : json.o;
    sketch.total = json.n;
    sketch.zeroCount = json.z;
    sketch.sumMicros = json.s;
    return sketch;
  }

  private placeOutside(index: number): void {
    if (this.counts.length === 0) {
      this.counts = [1];
      this.offset = index;
      return;
    }
    const high = Math.max(index, this.offset + this.counts.length - 1);
    const boundary = Math.max(Math.min(index, this.offset), high - MAX_BUCKETS + 1);
    if (boundary === this.offset) {
      if (index < this.offset) {
        // Below the lowest bucket a full sketch keeps: folds into it.
        this.counts[0]! += 1;
        return;
      }
      while (this.offset + this.counts.length <= index) this.counts.push(0);
      this.counts[index - this.offset]! += 1;
      return;
    }
    const rebuilt = new Array<number>(high - boundary + 1).fill(0);
    for (let i = 0; i < this.counts.length; i++)
      rebuilt[Math.max(this.offset + i, boundary) - boundary]! += this.counts[i]!;
    rebuilt[Math.max(index, boundary) - boundary]! += 1;
    this.counts = rebuilt;
    this.offset = boundary;
  }
}
