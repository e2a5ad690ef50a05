/**
 * Money from tokens: a price table (per model, US dollars per million tokens in and out)
 * applied to the tokens an aggregate counted. Prices are applied when the figures are read,
 * so the stored aggregates hold tokens only and a new price table needs no recount. A model
 * missing from the table has no cost (null), never a cost of zero; a figure over several
 * models is null as soon as one of them is unpriced, and names the unpriced ones.
 */
import { type ModelPrice, type PriceTable, priceOf as priceInTable } from "../core/cost.ts";
import { NO_MODEL, type ProtocolAggregate } from "./aggregate.ts";

// One price table for the whole product: the step records' costs and these figures read the same one.
export type { ModelPrice, PriceTable };

export interface TokenFigures {
  promptTokens: number;
  completionTokens: number;
  /** US dollars; null when a model is not in the price table. */
  cost: number | null;
}

export interface ModelCost extends TokenFigures {
  model: string;
  calls: number;
}

export interface CostFigures extends TokenFigures {
  /**
   * Finished runs the cost is spread over (the tokens and cost are of every step record,
   * a run still waiting for input included).
   */
  runs: number;
  /** Mean cost of a finished run (US dollars); null when unpriced or no run. */
  costPerRun: number | null;
  /** Standard deviation of a run's cost, exact for one model (else at the mean price per token). */
  costPerRunSd: number | null;
  models: ModelCost[];
  /** Models the price table does not know (their tokens have no cost). */
  unpriced: string[];
}

/** The price of a model: its own entry, else none (`(none)`, a step that named no model, is never priced). */
export function priceOf(prices: PriceTable | undefined, model: string): ModelPrice | undefined {
  if (model === NO_MODEL) return undefined;
  return priceInTable(prices, model);
}

/** US dollars for the tokens at the price; null without a price. */
export function costOf(
  price: ModelPrice | undefined,
  promptTokens: number,
  completionTokens: number,
): number | null {
  if (price === undefined) return promptTokens === 0 && completionTokens === 0 ? 0 : null;
  return (promptTokens * price.inputPerMillionUsd + completionTokens * price.outputPerMillionUsd) / 1_000_000;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Dollars to 1e-6 (a millionth of a dollar), so figures read the same whatever the order of the sums. */
export function money(value: number | null): number | null {
  return value === null ? null : round(value, 6);
}

export function costFigures(aggregate: ProtocolAggregate, prices: PriceTable | undefined): CostFigures {
  const { entries, other } = aggregate.models.view();
  const all = other === undefined ? entries : [...entries, ["(other)", other] as const];
  const models: ModelCost[] = [];
  const unpriced: string[] = [];
  let cost: number | null = 0;
  let promptTokens = 0;
  let completionTokens = 0;
  let costIn = 0;
  let costOut = 0;
  for (const [model, usage] of all) {
    const price = priceOf(prices, model);
    const modelCost = costOf(price, usage.promptTokens, usage.completionTokens);
    if (modelCost === null) unpriced.push(model);
    else if (price !== undefined) {
      costIn += (usage.promptTokens * price.inputPerMillionUsd) / 1_000_000;
      costOut += (usage.completionTokens * price.outputPerMillionUsd) / 1_000_000;
    }
    cost = cost === null || modelCost === null ? null : cost + modelCost;
    promptTokens += usage.promptTokens;
    completionTokens += usage.completionTokens;
    models.push({
      model,
      calls: usage.calls,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      cost: money(modelCost),
    });
  }
  models.sort((a, b) => b.promptTokens + b.completionTokens - (a.promptTokens + a.completionTokens));
  const tokens = aggregate.runTokens;
  let costPerRunSd: number | null = null;
  if (cost !== null && tokens.runs > 1) {
    // A run's cost is a·in + b·out with a, b the (mean) price per token in and out.
    const a = tokens.prompt === 0 ? 0 : costIn / tokens.prompt;
    const b = tokens.completion === 0 ? 0 : costOut / tokens.completion;
    const n = tokens.runs;
    const sum = a * tokens.prompt + b * tokens.completion;
    const sumSq = a * a * tokens.promptSq + b * b * tokens.completionSq + 2 * a * b * tokens.product;
    const variance = Math.max(0, (sumSq - (sum * sum) / n) / (n - 1));
    costPerRunSd = Math.sqrt(variance);
  }
  return {
    runs: tokens.runs,
    promptTokens,
    completionTokens,
    cost: money(cost),
    costPerRun: cost === null || tokens.runs === 0 ? null : round(cost / tokens.runs, 8),
    costPerRunSd: costPerRunSd === null ? null : round(costPerRunSd, 8),
    models,
    unpriced,
  };
}
