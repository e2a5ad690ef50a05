/**
 * Two versions of a protocol compared over a window of days, from the stored day aggregates
 * and scores: what the compare route answers and what the traffic split's rollback reads.
 */
import { type AggregateKey, createAggregate } from "../analysis/aggregate.ts";
import { type MeasureComparison, type Verdict, compareVersions } from "../analysis/compare.ts";
import type { PriceTable } from "../analysis/cost.ts";
import { emptyMoments } from "../analysis/scores.ts";
import { dayOf } from "../analysis/time.ts";
import type { PatternStore, ScoreStore } from "../ports.ts";

const DAY_MS = 86_400_000;
const QUALITY_MEASURES = new Set(["success_rate", "completion_rate", "feedback", "evaluator_score"]);

export interface ComparisonDeps {
  patterns: PatternStore;
  scores?: ScoreStore | undefined;
  prices?: PriceTable | undefined;
}

export interface StoredComparison {
  measures: MeasureComparison[];
  verdict: Verdict;
  /** Whether any run or score of the protocol was found in the window. */
  hasData: boolean;
}

/** `worse` when a quality measure is worse; `better` when one is better and none worse. */
export function overallVerdict(measures: readonly MeasureComparison[]): Verdict {
  const quality = measures.filter((m) => QUALITY_MEASURES.has(m.measure));
  if (quality.some((m) => m.verdict === "worse")) return "worse";
  return quality.some((m) => m.verdict === "better") ? "better" : "inconclusive";
}

/** The UTC days of a window of `days` days ending on the day of `now`. */
export function windowDays(days: number, now: number): { fromDay: string; toDay: string } {
  const toDay = dayOf(new Date(now).toISOString());
  const fromDay = new Date(Date.parse(`${toDay}T00:00:00Z`) - (days - 1) * DAY_MS).toISOString().slice(0, 10);
  return { fromDay, toDay };
}

export async function compareStoredVersions(
  deps: ComparisonDeps,
  key: AggregateKey,
  base: number,
  candidate: number,
  window: { fromDay: string; toDay: string },
): Promise<StoredComparison> {
  const protocolKey = { tenant: key.tenant, document: key.document, protocol: key.protocol };
  const [stored, scores] = await Promise.all([
    deps.patterns.readWindow(protocolKey, window.fromDay, window.toDay),
    deps.scores ? deps.scores.summarize(protocolKey, window.fromDay, window.toDay) : Promise.resolve([]),
  ]);
  const side = (version: number) => ({
    aggregate:
      stored?.versions.find((a) => a.version === version) ?? createAggregate({ ...protocolKey, version }),
    feedback: scores.find((s) => s.version === version)?.feedback ?? emptyMoments(),
    evaluator: scores.find((s) => s.version === version)?.evaluator ?? emptyMoments(),
  });
  const measures = compareVersions(side(base), side(candidate), {
    ...(deps.prices ? { prices: deps.prices } : {}),
  });
  return { measures, verdict: overallVerdict(measures), hasData: stored !== undefined || scores.length > 0 };
}
