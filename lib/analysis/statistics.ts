/**
 * Execution statistics of one protocol, from its aggregate. Latencies are in milliseconds,
 * rounded to 0.01 ms, within the sketch's 1% relative error (see sketch.ts); rates are
 * fractions in [0, 1], null when nothing was counted.
 */
import type { ProtocolAggregate, StepAggregate } from "./aggregate.ts";
import type { MovaDocument } from "../mova/schema.ts";
import type { LatencySketch } from "./sketch.ts";
import { type CostFigures, type PriceTable, costFigures, costOf, money, priceOf } from "./cost.ts";

export interface LatencyFigures {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  min: number | null;
  max: number | null;
  mean: number | null;
}

export interface StepStatistics {
  step: string;
  action: string;
  /** Step records, skipped ones included (a step entered twice in a run counts twice). */
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  /** succeeded / (succeeded + failed). */
  successRate: number | null;
  attempts: number;
  retries: number;
  latency: LatencyFigures;
  /** The model the step's records name ("" when none). */
  model: string;
  promptTokens: number;
  completionTokens: number;
  /** US dollars at the price table; null when the step's model is not priced. */
  cost: number | null;
}

/** Completed runs by the protocol's `success` criteria. */
export interface QualityFigures {
  succeeded: number;
  unsuccessful: number;
  /** Completed runs without criteria (or recorded before outcomes were kept). */
  unknown: number;
  /**
   * succeeded / (succeeded + unsuccessful + failed): the share of finished runs that achieved
   * their purpose; null when no completed run was judged by criteria.
   */
  successRate: number | null;
}

export interface ExecutionStatistics {
  total: number;
  successful: number;
  /** failed and timed_out runs. */
  failed: number;
  timedOut: number;
  waitingInput: number;
  /** successful / (successful + failed): completed, whatever the outcome. */
  completionRate: number | null;
  /** The same as completionRate (kept for the clients that read it); quality.successRate says whether runs achieved their purpose. */
  successRate: number | null;
  quality: QualityFigures;
  duration: LatencyFigures;
  cost: CostFigures;
  steps: StepStatistics[];
}

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function rate(part: number, whole: number): number | null {
  return whole === 0 ? null : round(part / whole, 4);
}

function ms(value: number | undefined): number | null {
  return value === undefined ? null : round(value);
}

export function latencyFigures(sketch: LatencySketch): LatencyFigures {
  return {
    p50: ms(sketch.quantile(0.5)),
    p95: ms(sketch.quantile(0.95)),
    p99: ms(sketch.quantile(0.99)),
    min: ms(sketch.min),
    max: ms(sketch.max),
    mean: ms(sketch.mean),
  };
}

/** The ids of a protocol's steps in document order, when the document is known. */
function documentStepOrder(document: MovaDocument | undefined, protocol: string): Map<string, number> {
  const order = new Map<string, number>();
  const steps = document?.protocols.find((p) => p.name === protocol)?.steps ?? [];
  for (const [index, step] of steps.entries()) order.set(step.id, index);
  return order;
}

/** Steps in document order when known, then by how often they ran, then by id. */
function orderedSteps(aggregate: ProtocolAggregate, document?: MovaDocument): Array<[string, StepAggregate]> {
  const order = documentStepOrder(document, aggregate.protocol);
  const { entries, other } = aggregate.steps.view();
  const sorted = entries.sort(([a, sa], [b, sb]) => {
    const oa = order.get(a) ?? Number.POSITIVE_INFINITY;
    const ob = order.get(b) ?? Number.POSITIVE_INFINITY;
    if (oa !== ob) return oa - ob;
    return sb.total - sa.total || (a < b ? -1 : a > b ? 1 : 0);
  });
  if (other !== undefined) sorted.push(["(other)", other]);
  return sorted;
}

export function qualityFigures(aggregate: ProtocolAggregate): QualityFigures {
  const { succeeded, unsuccessful, unknown } = aggregate.quality;
  return {
    succeeded,
    unsuccessful,
    unknown,
    successRate:
      succeeded + unsuccessful === 0 ? null : rate(succeeded, succeeded + unsuccessful + aggregate.failed),
  };
}

export function computeStatistics(
  aggregate: ProtocolAggregate,
  document?: MovaDocument,
  prices?: PriceTable,
): ExecutionStatistics {
  const completionRate = rate(aggregate.completed, aggregate.completed + aggregate.failed);
  return {
    total: aggregate.executions,
    successful: aggregate.completed,
    failed: aggregate.failed,
    timedOut: aggregate.timedOut,
    waitingInput: aggregate.waitingInput,
    completionRate,
    successRate: completionRate,
    quality: qualityFigures(aggregate),
    duration: latencyFigures(aggregate.duration),
    cost: costFigures(aggregate, prices),
    steps: orderedSteps(aggregate, document).map(([id, step]) => ({
      step: id,
      action: step.action,
      total: step.total,
      succeeded: step.succeeded,
      failed: step.failed,
      skipped: step.skipped,
      successRate: rate(step.succeeded, step.succeeded + step.failed),
      attempts: step.attempts,
      retries: step.retries,
      latency: latencyFigures(step.latency),
      model: step.model,
      promptTokens: step.promptTokens,
      completionTokens: step.completionTokens,
      cost: money(costOf(priceOf(prices, step.model), step.promptTokens, step.completionTokens)),
    })),
  };
}
