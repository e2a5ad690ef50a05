/**
 * Patterns of one protocol, each with the figures behind it:
 * - `strategy`: paths of completed runs by frequency. "Taken" counts the runs that went down
 *   the path: those that completed on it, plus the failed runs whose path is a prefix of it
 *   (they were on it when they failed). successRateWhenTaken = runs / taken.
 * - `failure_point`: steps at which runs failed (see aggregate.ts for the attribution), with
 *   their share of all failed runs, the step's failed records and its top error codes.
 * - `tool_selection`: per tool, calls, success rate, latency percentiles and retries.
 * - `prompt`: terms whose presence in a prompt goes with the step succeeding (or failing).
 *   lift = ((s + 1) / (S + 2)) / ((f + 1) / (F + 2)), where s, f are the succeeded and failed
 *   prompts containing the term and S, F all succeeded and failed prompts (add-one
 *   smoothing on both proportions). Only terms in at least `minTermCount` prompts, and only
 *   when there are both succeeded and failed prompts.
 * - `intent`: per recognised intent, the protocol it started and how those runs ended.
 */
import { type ProtocolAggregate, PATH_SEPARATOR, splitPathKey } from "./aggregate.ts";
import { type LatencyFigures, latencyFigures, rate, round } from "./statistics.ts";

export const PATTERN_TYPES = ["strategy", "failure_point", "tool_selection", "prompt", "intent"] as const;
export type PatternType = (typeof PATTERN_TYPES)[number];

export interface StrategyPattern {
  type: "strategy";
  protocol: string;
  path: string[];
  figures: {
    /** Completed runs on this path. */
    runs: number;
    shareOfSuccesses: number | null;
    taken: number;
    successRateWhenTaken: number | null;
    medianDurationMs: number | null;
  };
}

export interface FailurePointPattern {
  type: "failure_point";
  protocol: string;
  step: string;
  figures: {
    failedRuns: number;
    shareOfFailedRuns: number | null;
    /** Failed records of the step (a step that failed and was re-entered counts each time). */
    failures: number;
    /** failures / (succeeded + failed) of the step. */
    failureRate: number | null;
    topErrorCodes: Array<{ code: string; count: number }>;
  };
}

export interface ToolSelectionPattern {
  type: "tool_selection";
  protocol: string;
  tool: string;
  figures: {
    calls: number;
    succeeded: number;
    failed: number;
    successRate: number | null;
    attempts: number;
    retries: number;
    latency: LatencyFigures;
  };
}

export interface PromptPattern {
  type: "prompt";
  protocol: string;
  term: string;
  /** `success`: the term goes with succeeding prompts; `failure`: with failing ones. */
  direction: "success" | "failure";
  figures: { lift: number; succeeded: number; failed: number; totalSucceeded: number; totalFailed: number };
}

export interface IntentPattern {
  type: "intent";
  protocol: string;
  intent: string;
  figures: {
    runs: number;
    completed: number;
    failed: number;
    timedOut: number;
    waitingInput: number;
    successRate: number | null;
    failureRate: number | null;
  };
}

export type Pattern =
  | StrategyPattern
  | FailurePointPattern
  | ToolSelectionPattern
  | PromptPattern
  | IntentPattern;

export interface PatternOptions {
  /** Most strategy patterns reported. Default 10. */
  maxPaths?: number;
  /** A term must appear in at least this many prompts. Default 3. */
  minTermCount?: number;
  /** Smallest lift (or largest 1/lift) reported. Default 1.5. */
  minLift?: number;
  /** Most prompt patterns per direction. Default 20. */
  maxTerms?: number;
  /** Most error codes per failure point. Default 5. */
  maxErrorCodes?: number;
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function strategyPatterns(aggregate: ProtocolAggregate, options: PatternOptions = {}): StrategyPattern[] {
  const successful = aggregate.successfulPaths.view().entries;
  const taken = aggregate.pathsTaken.view().entries;
  const successCount = new Map(successful.map(([key, path]) => [key, path.count]));
  /** Finished runs on a path that did not complete there: failed on the way. */
  const failedOn = taken
    .map(([key, counter]) => [key, Math.max(0, counter.n - (successCount.get(key) ?? 0))] as const)
    .filter(([, n]) => n > 0);
  const patterns = successful.map(([key, path]): StrategyPattern => {
    let failedOnTheWay = 0;
    for (const [prefix, n] of failedOn) {
      if (key === prefix || key.startsWith(prefix + PATH_SEPARATOR)) failedOnTheWay += n;
    }
    const takenCount = path.count + failedOnTheWay;
    const median = path.duration.quantile(0.5);
    return {
      type: "strategy",
      protocol: aggregate.protocol,
      path: splitPathKey(key),
      figures: {
        runs: path.count,
        shareOfSuccesses: rate(path.count, aggregate.completed),
        taken: takenCount,
        successRateWhenTaken: rate(path.count, takenCount),
        medianDurationMs: median === undefined ? null : round(median),
      },
    };
  });
  patterns.sort(
    (a, b) =>
      b.figures.runs - a.figures.runs || byKey(a.path.join(PATH_SEPARATOR), b.path.join(PATH_SEPARATOR)),
  );
  return patterns.slice(0, options.maxPaths ?? 10);
}

function failurePointPatterns(
  aggregate: ProtocolAggregate,
  options: PatternOptions = {},
): FailurePointPattern[] {
  const { entries, other } = aggregate.steps.view();
  if (other !== undefined) entries.push(["(other)", other]);
  const patterns: FailurePointPattern[] = [];
  for (const [id, step] of entries) {
    if (step.failed === 0 && step.failedRuns === 0) continue;
    const codes = step.errors.view();
    const topErrorCodes = codes.entries.map(([code, c]) => ({ code, count: c.n }));
    if (codes.other !== undefined && codes.other.n > 0)
      topErrorCodes.push({ code: "(other)", count: codes.other.n });
    patterns.push({
      type: "failure_point",
      protocol: aggregate.protocol,
      step: id,
      figures: {
        failedRuns: step.failedRuns,
        shareOfFailedRuns: rate(step.failedRuns, aggregate.failed),
        failures: step.failed,
        failureRate: rate(step.failed, step.succeeded + step.failed),
        topErrorCodes: topErrorCodes.slice(0, options.maxErrorCodes ?? 5),
      },
    });
  }
  return patterns.sort(
    (a, b) =>
      b.figures.failedRuns - a.figures.failedRuns ||
      b.figures.failures - a.figures.failures ||
      byKey(a.step, b.step),
  );
}

function toolSelectionPatterns(aggregate: ProtocolAggregate): ToolSelectionPattern[] {
  const { entries, other } = aggregate.tools.view();
  if (other !== undefined) entries.push(["(other)", other]);
  return entries
    .map(
      ([tool, t]): ToolSelectionPattern => ({
        type: "tool_selection",
        protocol: aggregate.protocol,
        tool,
        figures: {
          calls: t.calls,
          succeeded: t.succeeded,
          failed: t.failed,
          successRate: rate(t.succeeded, t.calls),
          attempts: t.attempts,
          retries: t.retries,
          latency: latencyFigures(t.latency),
        },
      }),
    )
    .sort((a, b) => b.figures.calls - a.figures.calls || byKey(a.tool, b.tool));
}

function termLift(succeeded: number, failed: number, totalSucceeded: number, totalFailed: number): number {
  return (succeeded + 1) / (totalSucceeded + 2) / ((failed + 1) / (totalFailed + 2));
}

function promptPatterns(aggregate: ProtocolAggregate, options: PatternOptions = {}): PromptPattern[] {
  const { succeeded: totalSucceeded, failed: totalFailed } = aggregate.promptSteps;
  if (totalSucceeded === 0 || totalFailed === 0) return [];
  const minCount = options.minTermCount ?? 3;
  const minLift = options.minLift ?? 1.5;
  const maxTerms = options.maxTerms ?? 20;
  const success: PromptPattern[] = [];
  const failure: PromptPattern[] = [];
  for (const [term, t] of aggregate.terms.view().entries) {
    if (t.succeeded + t.failed < minCount) continue;
    const lift = termLift(t.succeeded, t.failed, totalSucceeded, totalFailed);
    const direction = lift >= minLift ? "success" : lift <= 1 / minLift ? "failure" : undefined;
    if (direction === undefined) continue;
    (direction === "success" ? success : failure).push({
      type: "prompt",
      protocol: aggregate.protocol,
      term,
      direction,
      figures: {
        lift: round(lift, 4),
        succeeded: t.succeeded,
        failed: t.failed,
        totalSucceeded,
        totalFailed,
      },
    });
  }
  success.sort((a, b) => b.figures.lift - a.figures.lift || byKey(a.term, b.term));
  failure.sort((a, b) => a.figures.lift - b.figures.lift || byKey(a.term, b.term));
  return [...success.slice(0, maxTerms), ...failure.slice(0, maxTerms)];
}

function intentPatterns(aggregate: ProtocolAggregate): IntentPattern[] {
  const { entries, other } = aggregate.intents.view();
  if (other !== undefined) entries.push(["(other)", other]);
  return entries
    .map(([intent, i]): IntentPattern => {
      const finished = i.completed + i.failed;
      return {
        type: "intent",
        protocol: aggregate.protocol,
        intent,
        figures: {
          runs: i.runs,
          completed: i.completed,
          failed: i.failed,
          timedOut: i.timedOut,
          waitingInput: i.waitingInput,
          successRate: rate(i.completed, finished),
          failureRate: rate(i.failed, finished),
        },
      };
    })
    .sort((a, b) => b.figures.runs - a.figures.runs || byKey(a.intent, b.intent));
}

export function extractPatterns(aggregate: ProtocolAggregate, options: PatternOptions = {}): Pattern[] {
  return [
    ...strategyPatterns(aggregate, options),
    ...failurePointPatterns(aggregate, options),
    ...toolSelectionPatterns(aggregate),
    ...promptPatterns(aggregate, options),
    ...intentPatterns(aggregate),
  ];
}
