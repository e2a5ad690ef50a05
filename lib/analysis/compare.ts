/**
 * Comparing two document versions of a protocol, measure by measure: each measure's two
 * values, the difference (candidate − base), the test used and its two-sided p-value, a
 * verdict, and how many more runs a verdict would need.
 *
 * Tests:
 * - rates (success rate, completion rate): the two-proportion z-test with the pooled
 *   proportion; runs needed: per version, for a two-sided test at α = 0.05 with 80 % power to
 *   detect the observed difference (normal approximation);
 * - scores (feedback, evaluator score) and cost per run: Welch's t-test on the means (from
 *   count, sum and sum of squares), Welch–Satterthwaite degrees of freedom;
 * - latency p50 and p95: the Mann–Whitney U test on the two runs' latency sketches (values
 *   within a bucket are ties; normal approximation with the tie correction), which asks
 *   whether one version's runs take longer than the other's.
 *
 * A verdict is `better` or `worse` when p < α (0.05) and each version has at least
 * `minRuns` observations, else `inconclusive`. Higher is better for rates and scores, lower
 * for latency and cost.
 */
import jStat from "jstat";
import type { ProtocolAggregate } from "./aggregate.ts";
import { type PriceTable, costFigures } from "./cost.ts";
import type { LatencySketch } from "./sketch.ts";
import type { ScoreMoments } from "./scores.ts";

export const ALPHA = 0.05;
const POWER = 0.8;
export const DEFAULT_MIN_RUNS = 30;

export type Verdict = "better" | "worse" | "inconclusive";
export type TestName = "two-proportion z-test" | "Welch's t-test" | "Mann-Whitney U test";

export interface MeasureComparison {
  measure: string;
  base: number | null;
  candidate: number | null;
  /** candidate − base. */
  difference: number | null;
  test: TestName;
  /** Two-sided; null when the test cannot be made (too few observations, no variance). */
  pValue: number | null;
  verdict: Verdict;
  /** Observations per version: base, candidate. */
  n: { base: number; candidate: number };
  /**
   * More observations each version needs before a verdict can be reached at the observed
   * difference (0 once there is a verdict; null when the difference is none, so no number
   * of runs would make it significant).
   */
  moreRunsNeeded: number | null;
}

const zCritical = (): number => jStat.normal.inv(1 - ALPHA / 2, 0, 1);
const zPower = (): number => jStat.normal.inv(POWER, 0, 1);

function twoSidedNormal(z: number): number {
  return Math.min(1, 2 * (1 - jStat.normal.cdf(Math.abs(z), 0, 1)));
}

function verdictOf(
  pValue: number | null,
  difference: number | null,
  n: { base: number; candidate: number },
  higherIsBetter: boolean,
  minRuns: number,
): Verdict {
  if (pValue === null || difference === null || difference === 0) return "inconclusive";
  if (pValue >= ALPHA || n.base < minRuns || n.candidate < minRuns) return "inconclusive";
  return difference > 0 === higherIsBetter ? "better" : "worse";
}

function moreRuns(
  verdict: Verdict,
  needed: number | null,
  n: { base: number; candidate: number },
  minRuns: number,
) {
  if (verdict !== "inconclusive") return 0;
  if (needed === null || !Number.isFinite(needed)) return null;
  return Math.max(0, Math.ceil(Math.max(needed, minRuns)) - Math.min(n.base, n.candidate));
}

/** Two proportions x1/n1 (base) and x2/n2 (candidate). */
export function compareProportions(
  measure: string,
  base: { successes: number; n: number },
  candidate: { successes: number; n: number },
  minRuns = DEFAULT_MIN_RUNS,
): MeasureComparison {
  const n = { base: base.n, candidate: candidate.n };
  const p1 = base.n === 0 ? null : base.successes / base.n;
  const p2 = candidate.n === 0 ? null : candidate.successes / candidate.n;
  const difference = p1 === null || p2 === null ? null : p2 - p1;
  let pValue: number | null = null;
  let needed: number | null = null;
  if (p1 !== null && p2 !== null && difference !== null) {
    const pooled = (base.successes + candidate.successes) / (base.n + candidate.n);
    const se = Math.sqrt(pooled * (1 - pooled) * (1 / base.n + 1 / candidate.n));
    pValue = se === 0 ? (difference === 0 ? 1 : null) : twoSidedNormal(difference / se);
    if (difference !== 0) {
      // Per group, equal sizes: n = (zα/2·√(2·p̄q̄) + zβ·√(p1q1 + p2q2))² / Δ².
      const mean = (p1 + p2) / 2;
      const a = zCritical() * Math.sqrt(2 * mean * (1 - mean));
      const b = zPower() * Math.sqrt(p1 * (1 - p1) + p2 * (1 - p2));
      needed = (a + b) ** 2 / difference ** 2;
    }
  }
  const verdict = verdictOf(pValue, difference, n, true, minRuns);
  return {
    measure,
    base: p1 === null ? null : round(p1),
    candidate: p2 === null ? null : round(p2),
    difference: difference === null ? null : round(difference),
    test: "two-proportion z-test",
    pValue: pValue === null ? null : round(pValue, 6),
    verdict,
    n,
    moreRunsNeeded: moreRuns(verdict, needed, n, minRuns),
  };
}

/** Two means from their moments (count, sum, sum of squares). */
export function compareMeans(
  measure: string,
  base: ScoreMoments,
  candidate: ScoreMoments,
  higherIsBetter: boolean,
  minRuns = DEFAULT_MIN_RUNS,
  digits = 4,
): MeasureComparison {
  const n = { base: base.n, candidate: candidate.n };
  const m1 = base.n === 0 ? null : base.sum / base.n;
  const m2 = candidate.n === 0 ? null : candidate.sum / candidate.n;
  const difference = m1 === null || m2 === null ? null : m2 - m1;
  let pValue: number | null = null;
  let needed: number | null = null;
  if (difference !== null && base.n >= 2 && candidate.n >= 2) {
    const v1 = sampleVariance(base);
    const v2 = sampleVariance(candidate);
    const s1 = v1 / base.n;
    const s2 = v2 / candidate.n;
    const se = Math.sqrt(s1 + s2);
    if (se === 0) pValue = difference === 0 ? 1 : null;
    else {
      const t = difference / se;
      const df = (s1 + s2) ** 2 / (s1 ** 2 / (base.n - 1) + s2 ** 2 / (candidate.n - 1));
      pValue = Math.min(1, 2 * (1 - jStat.studentt.cdf(Math.abs(t), df)));
    }
    if (difference !== 0) needed = ((zCritical() + zPower()) ** 2 * (v1 + v2)) / difference ** 2;
  }
  const verdict = verdictOf(pValue, difference, n, higherIsBetter, minRuns);
  return {
    measure,
    base: m1 === null ? null : round(m1, digits),
    candidate: m2 === null ? null : round(m2, digits),
    difference: difference === null ? null : round(difference, digits),
    test: "Welch's t-test",
    pValue: pValue === null ? null : round(pValue, 6),
    verdict,
    n,
    moreRunsNeeded: moreRuns(verdict, needed, n, minRuns),
  };
}

function sampleVariance(m: ScoreMoments): number {
  return Math.max(0, (m.sumSq - (m.sum * m.sum) / m.n) / (m.n - 1));
}

/**
 * The Mann–Whitney U test between two latency sketches: every value of a bucket stands at the
 * bucket's value (ties within a bucket), so U counts, over pairs of buckets, the pairs where the
 * candidate is slower plus half the ties. z uses the tie-corrected variance.
 */
export function mannWhitney(
  base: Array<[number, number]>,
  candidate: Array<[number, number]>,
): { u: number; z: number; pValue: number } | undefined {
  const n1 = base.reduce((sum, [, count]) => sum + count, 0);
  const n2 = candidate.reduce((sum, [, count]) => sum + count, 0);
  if (n1 === 0 || n2 === 0) return undefined;
  // Merge the buckets by value: ranks and ties.
  const groups = new Map<number, { b: number; c: number }>();
  for (const [value, count] of base) {
    const g = groups.get(value) ?? { b: 0, c: 0 };
    g.b += count;
    groups.set(value, g);
  }
  for (const [value, count] of candidate) {
    const g = groups.get(value) ?? { b: 0, c: 0 };
    g.c += count;
    groups.set(value, g);
  }
  const values = [...groups.keys()].sort((a, b) => a - b);
  let below = 0;
  let candidateRankSum = 0;
  let tieTerm = 0;
  for (const value of values) {
    const g = groups.get(value)!;
    const t = g.b + g.c;
    const meanRank = below + (t + 1) / 2;
    candidateRankSum += g.c * meanRank;
    tieTerm += t ** 3 - t;
    below += t;
  }
  const n = n1 + n2;
  const u = candidateRankSum - (n2 * (n2 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const varianceU = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (!(varianceU > 0)) return { u, z: 0, pValue: 1 };
  const z = (u - mean) / Math.sqrt(varianceU);
  return { u, z, pValue: twoSidedNormal(z) };
}

/** A latency quantile of the two versions, tested with Mann–Whitney on their sketches. */
export function compareLatency(
  measure: string,
  quantile: number,
  base: LatencySketch,
  candidate: LatencySketch,
  minRuns = DEFAULT_MIN_RUNS,
): MeasureComparison {
  const n = { base: base.count, candidate: candidate.count };
  const q1 = base.quantile(quantile);
  const q2 = candidate.quantile(quantile);
  const difference = q1 === undefined || q2 === undefined ? null : q2 - q1;
  const test = mannWhitney(base.buckets(), candidate.buckets());
  const pValue = test?.pValue ?? null;
  // The direction comes from U: the candidate slower (z > 0) is worse.
  const direction = test === undefined || test.z === 0 ? 0 : test.z;
  const verdict = verdictOf(pValue, direction === 0 ? 0 : direction, n, false, minRuns);
  let needed: number | null = null;
  if (test !== undefined && test.z !== 0) {
    // z grows with √n at a fixed effect: the n at which |z| would reach zα/2 + zβ.
    const scale = ((zCritical() + zPower()) / Math.abs(test.z)) ** 2;
    needed = scale * Math.min(n.base, n.candidate);
  }
  return {
    measure,
    base: q1 === undefined ? null : round(q1, 2),
    candidate: q2 === undefined ? null : round(q2, 2),
    difference: difference === null ? null : round(difference, 2),
    test: "Mann-Whitney U test",
    pValue: pValue === null ? null : round(pValue, 6),
    verdict,
    n,
    moreRunsNeeded: moreRuns(verdict, needed, n, minRuns),
  };
}

function round(value: number, digits = 4): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export interface VersionSide {
  aggregate: ProtocolAggregate;
  feedback: ScoreMoments;
  evaluator: ScoreMoments;
}

/** The moments of the cost per run (from its mean and standard deviation); empty when the cost is unknown. */
function costMoments(aggregate: ProtocolAggregate, prices: PriceTable | undefined): ScoreMoments {
  const cost = costFigures(aggregate, prices);
  if (cost.costPerRun === null || cost.runs === 0) return { n: 0, sum: 0, sumSq: 0 };
  const n = cost.runs;
  const sum = cost.costPerRun * n;
  const sd = cost.costPerRunSd ?? 0;
  return { n, sum, sumSq: sd * sd * (n - 1) + (sum * sum) / n };
}

/** Every measure of the candidate against the base. */
export function compareVersions(
  base: VersionSide,
  candidate: VersionSide,
  options: { prices?: PriceTable; minRuns?: number } = {},
): MeasureComparison[] {
  const minRuns = options.minRuns ?? DEFAULT_MIN_RUNS;
  const judged = (a: ProtocolAggregate) => {
    const q = a.quality;
    // Runs judged by criteria: every finished run, when the protocol has criteria.
    return q.succeeded + q.unsuccessful === 0
      ? { successes: 0, n: 0 }
      : { successes: q.succeeded, n: q.succeeded + q.unsuccessful + a.failed };
  };
  const b = base.aggregate;
  const c = candidate.aggregate;
  return [
    compareProportions("success_rate", judged(b), judged(c), minRuns),
    compareProportions(
      "completion_rate",
      { successes: b.completed, n: b.completed + b.failed },
      { successes: c.completed, n: c.completed + c.failed },
      minRuns,
    ),
    compareMeans("feedback", base.feedback, candidate.feedback, true, minRuns),
    compareMeans("evaluator_score", base.evaluator, candidate.evaluator, true, minRuns),
    compareLatency("latency_p50_ms", 0.5, b.duration, c.duration, minRuns),
    compareLatency("latency_p95_ms", 0.95, b.duration, c.duration, minRuns),
    compareMeans(
      "cost_per_run_usd",
      costMoments(b, options.prices),
      costMoments(c, options.prices),
      false,
      minRuns,
      8,
    ),
  ];
}
