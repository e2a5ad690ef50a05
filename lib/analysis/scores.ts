/**
 * Scores on executions (users' feedback, evaluators' judgements), as the figures read them:
 * per document version, the count, sum and sum of squares of the scores, which add up
 * exactly across versions and give a mean and a variance.
 */
import { round } from "./statistics.ts";

/** The source of evaluators' judgements: `evaluator:<evaluator id>`; any other source is feedback. */
export const EVALUATOR_SOURCE_PREFIX = "evaluator:";

export interface ScoreMoments {
  n: number;
  sum: number;
  sumSq: number;
}

export interface VersionScores {
  version: number;
  feedback: ScoreMoments;
  evaluator: ScoreMoments;
}

export interface ScoreFigures {
  count: number;
  mean: number | null;
  sd: number | null;
}

export const emptyMoments = (): ScoreMoments => ({ n: 0, sum: 0, sumSq: 0 });

export function addMoments(target: ScoreMoments, source: ScoreMoments): ScoreMoments {
  target.n += source.n;
  target.sum += source.sum;
  target.sumSq += source.sumSq;
  return target;
}

/** Every version's moments added up. */
export function mergeScores(versions: readonly VersionScores[]): {
  feedback: ScoreMoments;
  evaluator: ScoreMoments;
} {
  const feedback = emptyMoments();
  const evaluator = emptyMoments();
  for (const v of versions) {
    addMoments(feedback, v.feedback);
    addMoments(evaluator, v.evaluator);
  }
  return { feedback, evaluator };
}

/** The sample variance (n − 1), null below two scores. */
export function variance(m: ScoreMoments): number | null {
  if (m.n < 2) return null;
  return Math.max(0, (m.sumSq - (m.sum * m.sum) / m.n) / (m.n - 1));
}

export function scoreFigures(m: ScoreMoments): ScoreFigures {
  const v = variance(m);
  return {
    count: m.n,
    mean: m.n === 0 ? null : round(m.sum / m.n, 4),
    sd: v === null ? null : round(Math.sqrt(v), 4),
  };
}
