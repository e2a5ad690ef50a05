/**
 * What a model call costs: a price table (US dollars per million tokens in and out, per model)
 * applied to a call's token usage. A model the table does not know has no cost (undefined),
 * never a cost of zero, so that the analysis can tell "free" from "unknown".
 */
import type { TokenUsage } from "./run.ts";

export interface ModelPrice {
  /** US dollars per million prompt (input) tokens. */
  inputPerMillionUsd: number;
  /** US dollars per million completion (output) tokens. */
  outputPerMillionUsd: number;
}

/** Prices by model name, as the provider names the model in its answer or as a step asks for it. */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

// Providers answer with dated snapshots ("gpt-4o-mini-2024-07-18") of the names people write.
const DATED_SNAPSHOT = /-\d{4}-\d{2}-\d{2}$/;

/** The price of `model`: its own entry, else the entry of the name its dated snapshot belongs to. */
export function priceOf(table: PriceTable | undefined, model: string | undefined): ModelPrice | undefined {
  if (!table || !model) return undefined;
  if (Object.hasOwn(table, model)) return table[model];
  const undated = model.replace(DATED_SNAPSHOT, "");
  if (undated !== model && Object.hasOwn(table, undated)) return table[undated];
  return undefined;
}

/** The cost in US dollars of `usage` on `model`, or undefined when the table has no price for it. */
export function costOf(
  table: PriceTable | undefined,
  model: string | undefined,
  usage: TokenUsage | undefined,
): number | undefined {
  const price = priceOf(table, model);
  if (!price || !usage) return undefined;
  const cost =
    (usage.promptTokens * price.inputPerMillionUsd + usage.completionTokens * price.outputPerMillionUsd) /
    1_000_000;
  // Rounded to a millionth of a cent so sums of many steps do not show float noise.
  return Math.round(cost * 1e8) / 1e8;
}

/** Adds token usages (a step with several model calls: repairs, tool rounds, fallbacks). */
export function addUsage(a: TokenUsage | undefined, b: TokenUsage | undefined): TokenUsage | undefined {
  if (!a) return b ? { ...b } : undefined;
  if (!b) return { ...a };
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
}
