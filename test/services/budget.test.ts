/**
 * The monthly budget: each merge's priced cost is added to its tenant's month in the patterns
 * table; the merge that crosses the budget emits BudgetExceeded, once; a redelivered event
 * adds nothing (it is a duplicate and merges nothing).
 */
import { Metrics } from "@aws-lambda-powertools/metrics";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { loadConfig } from "../../lib/config.ts";
import { EXECUTION_EVENT_TYPE, EXECUTION_EVENT_VERSION } from "../../lib/core/execution-event.ts";
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";
import { processExecutionEvents } from "../../lib/services/analysis-ingest.ts";
import { buildAnalysisDeps } from "../../lib/wiring/analysis.ts";
import { sampleExecution, uniqueTenant } from "../support/runtime-fixtures.ts";

let stack: LocalStack;
beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

function event(record: ExecutionRecord, id: string) {
  return {
    id,
    body: JSON.stringify({
      type: EXECUTION_EVENT_TYPE,
      version: EXECUTION_EVENT_VERSION,
      publishedAt: new Date().toISOString(),
      execution: record,
    }),
  };
}

function pricedRun(tenant: string): ExecutionRecord {
  const record = sampleExecution({ tenant });
  // 1M prompt tokens at 1 dollar and 0.5M completion tokens at 2 dollars: 2 dollars a run.
  record.steps = record.steps.map((step) => ({
    ...step,
    model: "m",
    usage: { promptTokens: 1_000_000, completionTokens: 500_000, totalTokens: 1_500_000 },
  }));
  return record;
}

function budgetMetric(metrics: Metrics): number | undefined {
  const emf = metrics.serializeMetrics() as Record<string, unknown>;
  const value = emf.BudgetExceeded;
  return Array.isArray(value)
    ? value.reduce((a: number, b: number) => a + b, 0)
    : (value as number | undefined);
}

describe("monthly budget", () => {
  it("emits BudgetExceeded on the merge that crosses it, once, and a redelivery adds nothing", async () => {
    const tenant = uniqueTenant("budget");
    const config = loadConfig({
      ...stack.env,
      LLM_PRICES: JSON.stringify({ m: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }),
      TENANT_MONTHLY_BUDGETS: JSON.stringify({ [tenant]: 5 }),
      LOG_LEVEL: "SILENT",
    });
    const deps = buildAnalysisDeps(config, { env: stack.env });
    const runs = [pricedRun(tenant), pricedRun(tenant), pricedRun(tenant), pricedRun(tenant)];

    const first = new Metrics({ namespace: "Mova", serviceName: "analyze" });
    await processExecutionEvents([event(runs[0]!, "a"), event(runs[1]!, "b")], { ...deps, metrics: first });
    expect(budgetMetric(first)).toBeUndefined(); // 4 dollars of 5

    const second = new Metrics({ namespace: "Mova", serviceName: "analyze" });
    // The first run again (a redelivery) and a new one: 6 dollars, the budget crossed.
    const outcomes = await processExecutionEvents([event(runs[0]!, "a2"), event(runs[2]!, "c")], {
      ...deps,
      metrics: second,
    });
    expect(outcomes.get("a2")?.status).toBe("duplicate");
    expect(budgetMetric(second)).toBe(1);

    const third = new Metrics({ namespace: "Mova", serviceName: "analyze" });
    await processExecutionEvents([event(runs[3]!, "d")], { ...deps, metrics: third });
    expect(budgetMetric(third)).toBeUndefined(); // already over: not again

    const month = new Date().toISOString().slice(0, 7);
    const { after } = await deps.budget!.spend.add(tenant, month, 0);
    expect(after).toBe(8);
  });
});
