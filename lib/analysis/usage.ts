/**
 * Tokens and cost over day buckets, grouped by tenant, document, protocol, version, step,
 * model or day: what `GET /usage` answers. A group's cost is null as soon as one of its
 * models is unpriced (the row names them); runs are finished runs, calls step records with
 * usage.
 */
import type { ProtocolAggregate } from "./aggregate.ts";
import { type PriceTable, costOf, money, priceOf } from "./cost.ts";

export const USAGE_GROUPS = ["tenant", "document", "protocol", "version", "step", "model", "day"] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageRow {
  /** The group's fields: e.g. `{ document, protocol }` for `protocol`. */
  group: Record<string, string | number>;
  runs: number;
  calls: number;
  promptTokens: number;
  completionTokens: number;
  /** US dollars; null when a model of the group is not priced. */
  cost: number | null;
  unpriced: string[];
}

interface Accumulator {
  group: Record<string, string | number>;
  runs: number;
  calls: number;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  unpriced: Set<string>;
}

export function usageRows(
  buckets: Iterable<{ day: string; aggregate: ProtocolAggregate }>,
  groupBy: UsageGroup,
  prices: PriceTable | undefined,
): UsageRow[] {
  const rows = new Map<string, Accumulator>();
  const rowOf = (group: Record<string, string | number>): Accumulator => {
    const id = JSON.stringify(group);
    let row = rows.get(id);
    if (!row) {
      row = { group, runs: 0, calls: 0, promptTokens: 0, completionTokens: 0, cost: 0, unpriced: new Set() };
      rows.set(id, row);
    }
    return row;
  };
  const add = (row: Accumulator, model: string, calls: number, prompt: number, completion: number) => {
    row.calls += calls;
    row.promptTokens += prompt;
    row.completionTokens += completion;
    const cost = costOf(priceOf(prices, model), prompt, completion);
    if (cost === null) row.unpriced.add(model);
    else row.cost += cost;
  };

  for (const { day, aggregate: a } of buckets) {
    if (groupBy === "step") {
      for (const [step, s] of a.steps.view().entries) {
        if (s.promptTokens === 0 && s.completionTokens === 0) continue;
        const row = rowOf({ document: a.document, protocol: a.protocol, step });
        add(row, s.model, s.succeeded + s.failed, s.promptTokens, s.completionTokens);
      }
      continue;
    }
    const group: Record<string, string | number> =
      groupBy === "tenant"
        ? { tenant: a.tenant }
        : groupBy === "document"
          ? { document: a.document }
          : groupBy === "protocol"
            ? { document: a.document, protocol: a.protocol }
            : groupBy === "version"
              ? { document: a.document, protocol: a.protocol, version: a.version ?? -1 }
              : groupBy === "day"
                ? { day }
                : {};
    const view = a.models.view();
    const models =
      view.other === undefined ? view.entries : [...view.entries, ["(other)", view.other] as const];
    if (groupBy === "model") {
      for (const [model, m] of models)
        add(rowOf({ model }), model, m.calls, m.promptTokens, m.completionTokens);
      continue;
    }
    const row = rowOf(group);
    row.runs += a.runTokens.runs;
    for (const [model, m] of models) add(row, model, m.calls, m.promptTokens, m.completionTokens);
  }
  return [...rows.values()]
    .map((row) => ({
      group: row.group,
      runs: row.runs,
      calls: row.calls,
      promptTokens: row.promptTokens,
      completionTokens: row.completionTokens,
      cost: row.unpriced.size > 0 ? null : money(row.cost),
      unpriced: [...row.unpriced].sort(),
    }))
    .sort((a, b) => JSON.stringify(a.group).localeCompare(JSON.stringify(b.group)));
}
