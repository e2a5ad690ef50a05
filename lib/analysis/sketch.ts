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
import { MovaError } from "../errors.ts";

const DEFAULT_RELATIVE_ACCURACY = 0.01;
export const MAX_BUCKETS = 512;
const ZERO_THRESHOLD_MS = 0.001;

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

/** Whole milliseconds below this have their bucket index looked up (once computed) instead of computed. */
const SMALL_VALUES = 65_536;
/** Per relative accuracy: the bucket index of each whole millisecond 1 … SMALL_VALUES − 1, −1 until computed. */
const smallIndexTables = new Map<number, Int32Array>();

function smallIndexTable(relativeAccuracy: number): Int32Array {
  let table = smallIndexTables.get(relativeAccuracy);
  if (table === undefined) {
    table = new Int32Array(SMALL_VALUES).fill(-1);
    smallIndexTables.set(relativeAccuracy, table);
  }
  return table;
}

/** `n.toString(36)` of the counts below 36², made once: a stored aggregate holds thousands of them. */
const BASE36: readonly string[] = Array.from({ length: 36 * 36 }, (_, n) => n.toString(36));
/** Parts of more digits than this may pass 2^53, where `Number.parseInt` has the last word. */
const EXACT_DIGITS = 10;

/**
 * The bucket counts of the stored form (`c`): base-36 integers joined by commas, an empty
 * part for 0; undefined when a character is not 0–9, a–z or a comma. Each part's value is
 * `Number.parseInt(part, 36)` (read digit by digit while that is exact).
 */
function parseCounts(text: string): number[] | undefined {
  const counts: number[] = [];
  if (text === "") return counts;
  let value = 0;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const code = i === text.length ? 44 : text.charCodeAt(i);
    if (code === 44) {
      counts.push(i - start > EXACT_DIGITS ? Number.parseInt(text.slice(start, i), 36) : value);
      value = 0;
      start = i + 1;
    } else if (code >= 48 && code <= 57) value = value * 36 + (code - 48);
    else if (code >= 97 && code <= 122) value = value * 36 + (code - 87);
    else return undefined;
  }
  return counts;
}

/** The sum of the values is kept as sumHigh · SUM_SPLIT + sumLow, both small integers. */
const SUM_SPLIT = 2 ** 30;

/**
 * Bucket counts: 32-bit integers while the sketch holds at most INT32_MAX values (no bucket can
 * pass it then), 64-bit floats (exact to 2^53) beyond. An analysis adds to thousands of
 * sketches in turn: half the bytes of a number array (8 per count) is half the cache lines.
 * Side by side on 1 M executions: 0.94–0.96× the time, peak RSS 169 → 135 MB. A typed array
 * costs more to allocate, so a merge that copies sketches costs more (an SQS batch's merge
 * into a copy of its stored aggregate: 1.03–1.06×; the analysis function merges into the
 * aggregate it read instead: BENCHMARKS.md, 3).
 */
type Counts = Int32Array | Float64Array;
const INT32_MAX = 2 ** 31 - 1;
const NO_COUNTS = new Int32Array(0);

/** Zeroed counts of `length` buckets for a sketch of `total` values. */
function newCounts(length: number, total: number): Counts {
  return total > INT32_MAX ? new Float64Array(length) : new Int32Array(length);
}

export class LatencySketch {
  // An analysis adds to thousands of sketches in turn, and every cache line of a sketch it
  // has to fetch counts: the fields `add` uses come first (they are laid out in this order),
  // and they hold small integers, which V8 keeps in the object (a field that ever holds a
  // fraction or ±Infinity, or passes 2^31, becomes a pointer to a separate number).
  /** counts[i] is the count of bucket offset + i; the first and last are never 0. */
  private counts: Counts = NO_COUNTS;
  private offset = 0;
  private total = 0;
  /** Meaningful once total > 0. */
  private minimum = 0;
  private maximum = 0;
  /** The sum in whole microseconds: sumHigh · 2^30 + sumLow, with 0 ≤ sumLow < 2^30. */
  private sumLow = 0;
  private sumHigh = 0;
  /** Shared by the sketches of one accuracy: holds what `bucketIndex` computes, nothing else. */
  private readonly smallIndex: Int32Array;
  private zeroCount = 0;
  private readonly inverseLogGamma: number;
  readonly relativeAccuracy: number;
  private readonly gamma: number;

  constructor(relativeAccuracy: number = DEFAULT_RELATIVE_ACCURACY) {
    if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) {
      throw new MovaError("invalid_sketch", `relative accuracy must be in (0, 1), got ${relativeAccuracy}`);
    }
    this.relativeAccuracy = relativeAccuracy;
    this.gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy);
    this.inverseLogGamma = 1 / Math.log(this.gamma);
    this.smallIndex = smallIndexTable(relativeAccuracy);
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
  /** The sum of the values in whole microseconds. */
  private get sumMicros(): number {
    return this.sumHigh * SUM_SPLIT + this.sumLow;
  }
  private addMicros(micros: number): void {
    let low = this.sumLow + micros;
    if (low >= SUM_SPLIT) {
      const carry = Math.floor(low / SUM_SPLIT);
      this.sumHigh += carry;
      low -= carry * SUM_SPLIT;
    }
    this.sumLow = low;
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
      throw new MovaError("invalid_value", `a latency must be a finite number ≥ 0, got ${ms}`);
    }
    this.total += 1;
    // Past INT32_MAX values a bucket could pass what 32 bits hold.
    if (this.total === INT32_MAX + 1) this.counts = Float64Array.from(this.counts);
    this.addMicros(Math.round(ms * 1000));
    if (this.total === 1) {
      this.minimum = ms;
      this.maximum = ms;
    } else {
      if (ms < this.minimum) this.minimum = ms;
      if (ms > this.maximum) this.maximum = ms;
    }
    if (ms < ZERO_THRESHOLD_MS) {
      this.zeroCount += 1;
      return;
    }
    let index: number;
    const whole = ms | 0;
    if (whole === ms && whole < SMALL_VALUES) {
      // Durations are mostly whole milliseconds: the same few thousand logarithms, over and over.
      index = this.smallIndex[whole]!;
      if (index < 0) {
        index = this.bucketIndex(ms);
        this.smallIndex[whole] = index;
      }
    } else index = this.bucketIndex(ms);
    const slot = index - this.offset;
    if (slot >= 0 && slot < this.counts.length) this.counts[slot]! += 1;
    else this.placeOutside(index);
  }

  /** The bucket of a value ≥ ZERO_THRESHOLD_MS. `| 0`: an index of −0 would store as 0 and read back unequal. */
  private bucketIndex(ms: number): number {
    return Math.ceil(Math.log(ms) * this.inverseLogGamma) | 0;
  }

  /** Adds every value of `other` to this sketch. */
  merge(other: LatencySketch): this {
    if (other.relativeAccuracy !== this.relativeAccuracy) {
      throw new MovaError(
        "incompatible_sketch",
        `cannot merge sketches of relative accuracy ${this.relativeAccuracy} and ${other.relativeAccuracy}`,
      );
    }
    if (other.total === 0) return this;
    const empty = this.total === 0;
    this.total += other.total;
    this.zeroCount += other.zeroCount;
    this.sumHigh += other.sumHigh;
    this.addMicros(other.sumLow);
    if (empty || other.minimum < this.minimum) this.minimum = other.minimum;
    if (empty || other.maximum > this.maximum) this.maximum = other.maximum;
    if (other.counts.length === 0) {
      this.widenPastInt32();
      return this;
    }
    if (this.counts.length === 0) {
      this.counts = newCounts(other.counts.length, this.total);
      this.counts.set(other.counts);
      this.offset = other.offset;
      return this;
    }
    const shift = other.offset - this.offset;
    if (shift >= 0 && shift + other.counts.length <= this.counts.length) {
      // Within this sketch's buckets (a small batch merged into a stored sketch): added in place.
      this.widenPastInt32();
      const counts = this.counts;
      for (let i = 0; i < other.counts.length; i++) counts[shift + i]! += other.counts[i]!;
      return this;
    }
    const low = Math.min(this.offset, other.offset);
    const high = Math.max(this.offset + this.counts.length, other.offset + other.counts.length) - 1;
    const boundary = Math.max(low, high - MAX_BUCKETS + 1);
    const merged = newCounts(high - boundary + 1, this.total);
    for (const source of [this as LatencySketch, other]) {
      for (let i = 0; i < source.counts.length; i++) {
        merged[Math.max(source.offset + i, boundary) - boundary]! += source.counts[i]!;
      }
    }
    this.counts = merged;
    this.offset = boundary;
    return this;
  }

  /** Counts as 64-bit floats once the sketch holds more than INT32_MAX values. */
  private widenPastInt32(): void {
    if (this.total > INT32_MAX && this.counts instanceof Int32Array)
      this.counts = Float64Array.from(this.counts);
  }

  /** The value of rank ⌊q·(n − 1)⌋, within the relative accuracy; undefined when empty. */
  quantile(q: number): number | undefined {
    if (!(q >= 0 && q <= 1))
      throw new MovaError("invalid_quantile", `a quantile must be in [0, 1], got ${q}`);
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

  /** Each non-empty bucket as [its value, its count], ascending (zeros first, at 0): what a rank test reads. */
  buckets(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    if (this.zeroCount > 0) out.push([0, this.zeroCount]);
    for (let i = 0; i < this.counts.length; i++) {
      const n = this.counts[i]!;
      if (n > 0) out.push([(2 * this.gamma ** (this.offset + i)) / (this.gamma + 1), n]);
    }
    return out;
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
    const counts = this.counts;
    let c = "";
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i]!;
      if (i > 0) c += ",";
      if (n !== 0) c += BASE36[n] ?? n.toString(36);
    }
    json.c = c;
    return json;
  }

  static fromJSON(input: unknown): LatencySketch {
    const fail = (why: string): never => {
      throw new MovaError("invalid_sketch", `stored latency sketch is invalid: ${why}`);
    };
    if (typeof input !== "object" || input === null) return fail("not an object");
    const json = input as Partial<LatencySketchJson>;
    if (json.v !== 1) fail(`unknown version ${String(json.v)}`);
    const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
    if (typeof json.a !== "number") return fail("relative accuracy missing");
    if (!isCount(json.n) || !isCount(json.z) || !isCount(json.s)) return fail("counts must be integers ≥ 0");
    if (typeof json.o !== "number" || !Number.isSafeInteger(json.o)) return fail("offset must be an integer");
    const counts = typeof json.c === "string" ? parseCounts(json.c) : undefined;
    if (counts === undefined) return fail("bucket counts malformed");
    const sketch = new LatencySketch(json.a);
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
    sketch.counts = newCounts(counts.length, json.n);
    sketch.counts.set(counts);
    sketch.offset = counts.length === 0 ? 0 : json.o;
    sketch.total = json.n;
    sketch.zeroCount = json.z;
    sketch.sumHigh = Math.floor(json.s / SUM_SPLIT);
    sketch.sumLow = json.s - sketch.sumHigh * SUM_SPLIT;
    return sketch;
  }

  private placeOutside(index: number): void {
    if (this.counts.length === 0) {
      this.counts = newCounts(1, this.total);
      this.counts[0] = 1;
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
      const grown = newCounts(index - this.offset + 1, this.total);
      grown.set(this.counts);
      this.counts = grown;
      this.counts[index - this.offset]! += 1;
      return;
    }
    const rebuilt = newCounts(high - boundary + 1, this.total);
    for (let i = 0; i < this.counts.length; i++)
      rebuilt[Math.max(this.offset + i, boundary) - boundary]! += this.counts[i]!;
    rebuilt[Math.max(index, boundary) - boundary]! += 1;
    this.counts = rebuilt;
    this.offset = boundary;
  }
}
