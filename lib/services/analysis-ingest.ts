/**
 * The incremental (SQS) analysis: a batch of execution events becomes one aggregate per
 * protocol and day, written once per bucket. Each message is validated alone, so a
 * malformed one fails alone. Each execution is counted at most once however often its
 * message arrives: its marker is claimed first (see lib/adapters/dynamodb/pattern-store.ts).
 *
 * The history's `analysis` field is not touched here: `published` already says the event
 * reached the queue, and the marker in the patterns table is what says it was counted.
 * Only the batch analysis flips `pending` to `published`, once it has counted the execution.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import {
  type AggregateKey,
  type ProtocolAggregate,
  addExecution,
  aggregateKeyOf,
  createAggregate,
  recordKeyOf,
} from "../analysis/aggregate.ts";
import { ExecutionEventSchema } from "../core/execution-event.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { DayBucketKey, PatternStore, SpendCounter } from "../ports.ts";
import { type PriceTable, costOf, priceOf } from "../analysis/cost.ts";
import { type RollbackDeps, checkRollback } from "./traffic-split.ts";
import { type EvaluatorDeps, judgeExecutions } from "./evaluators.ts";
import { dayOf } from "../analysis/time.ts";
import { MovaError } from "../errors.ts";

interface IncomingEvent {
  /** The SQS message id (what a partial batch response names). */
  id: string;
  body: string;
}

export type EventOutcome =
  | { status: "counted"; executionId: string }
  /** Counted before (a redelivery, or the batch analysis counted it first). */
  | { status: "duplicate"; executionId: string }
  | { status: "failed"; code: string; message: string };

/** The monthly budgets: each merge's priced cost is added to its tenant's month. */
export interface BudgetDeps {
  spend: SpendCounter;
  prices: PriceTable;
  /** Tenant → US dollars a month. */
  budgets: Readonly<Record<string, number>>;
}

interface AnalysisServiceDeps {
  patterns: PatternStore;
  budget?: BudgetDeps;
  /** The traffic splits: judged after each merge of a split document (traffic-split.ts). */
  rollback?: RollbackDeps;
  /** The evaluators: the runs a merge counted are judged after it (evaluators.ts). */
  evaluators?: EvaluatorDeps;
  metrics?: Metrics;
  logger?: Logger;
  /** Epoch ms; `Date.now` by default. */
  now?: () => number;
}

export const METRIC_EXECUTIONS_ANALYSED = "ExecutionsAnalysed";
export const METRIC_ANALYSIS_FAILURES = "AnalysisFailures";
export const METRIC_BUDGET_EXCEEDED = "BudgetExceeded";
const METRIC_QUEUE_LAG = "QueueLagMs";

/** Parses and validates one message body against the execution event schema. */
function parseExecutionEvent(body: string): ExecutionRecord {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new MovaError(
      "invalid_execution_event",
      `the message body is not JSON: ${(error as Error).message}`,
    );
  }
  const parsed = ExecutionEventSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join(".") || "(body)"}: ${issue.message}`)
      .join("; ");
    throw new MovaError("invalid_execution_event", `not an execution event of a known version: ${issues}`);
  }
  return parsed.data.execution;
}

interface Group {
  key: DayBucketKey;
  /** Message id → record, first message per execution id. */
  records: Map<string, ExecutionRecord>;
}

export async function processExecutionEvents(
  events: readonly IncomingEvent[],
  deps: AnalysisServiceDeps,
): Promise<Map<string, EventOutcome>> {
  const now = deps.now ?? Date.now;
  const outcomes = new Map<string, EventOutcome>();
  const groups = new Map<string, Group>();
  /** The same execution twice in one batch: the later messages share the first's outcome. */
  const sameExecution = new Map<string, string[]>();
  const firstMessageOf = new Map<string, string>();

  for (const event of events) {
    let record: ExecutionRecord;
    try {
      record = parseExecutionEvent(event.body);
    } catch (error) {
      const failure = error as MovaError;
      outcomes.set(event.id, { status: "failed", code: failure.code, message: failure.message });
      deps.logger?.warn("malformed execution event", { messageId: event.id, error: failure.message });
      continue;
    }
    const executionKey = `${aggregateKeyOf(record)}\u0000${record.executionId}`;
    const first = firstMessageOf.get(executionKey);
    if (first !== undefined) {
      sameExecution.set(first, [...(sameExecution.get(first) ?? []), event.id]);
      continue;
    }
    firstMessageOf.set(executionKey, event.id);
    const day = dayOf(record.finishedAt, now());
    // One bucket per document version and day.
    const versionKey = recordKeyOf(record);
    const groupKey = `${aggregateKeyOf(versionKey)}\u0000${day}`;
    let group = groups.get(groupKey);
    if (!group) {
      group = {
        key: { ...versionKey, day },
        records: new Map(),
      };
      groups.set(groupKey, group);
    }
    group.records.set(event.id, record);
  }

  await Promise.all(
    [...groups.values()].map(async (group) => {
      for (const [messageId, outcome] of await writeGroup(group, deps, now)) outcomes.set(messageId, outcome);
    }),
  );
  for (const [first, others] of sameExecution) {
    const outcome = outcomes.get(first);
    for (const other of others) {
      outcomes.set(other, outcome?.status === "counted" ? { ...outcome, status: "duplicate" } : outcome!);
    }
  }

  const counted = [...outcomes.values()].filter((o) => o.status === "counted").length;
  const failed = [...outcomes.values()].filter((o) => o.status === "failed").length;
  if (deps.metrics) {
    deps.metrics.addMetric(METRIC_EXECUTIONS_ANALYSED, MetricUnit.Count, counted);
    deps.metrics.addMetric(METRIC_ANALYSIS_FAILURES, MetricUnit.Count, failed);
  }
  return outcomes;
}

async function writeGroup(
  group: Group,
  deps: AnalysisServiceDeps,
  now: () => number,
): Promise<Map<string, EventOutcome>> {
  const out = new Map<string, EventOutcome>();
  const protocolKey: AggregateKey = group.key;
  const byExecution = new Map<string, string>();
  for (const [messageId, record] of group.records) byExecution.set(record.executionId, messageId);

  const { claimed, duplicates, failed } = await deps.patterns.claimExecutions(
    protocolKey,
    [...group.records.values()].map((record) => ({ executionId: record.executionId, day: group.key.day })),
    "stream",
  );
  for (const executionId of duplicates) {
    out.set(byExecution.get(executionId)!, { status: "duplicate", executionId });
  }
  if (failed.length > 0) {
    const failures = failAll(group, failed[0]!.error, deps);
    for (const { executionId } of failed) {
      const messageId = byExecution.get(executionId)!;
      out.set(messageId, failures.get(messageId)!);
    }
  }
  if (claimed.length === 0) return out;

  const delta: ProtocolAggregate = createAggregate(protocolKey);
  for (const executionId of claimed) addExecution(delta, group.records.get(byExecution.get(executionId)!)!);
  try {
    await deps.patterns.mergeIntoBucket(group.key, delta, "stream");
  } catch (error) {
    await deps.patterns.releaseClaims(protocolKey, claimed).catch((releaseError: unknown) =>
      // The executions stay uncounted until the batch analysis repairs their day.
      deps.logger?.error("claims not released after a failed merge", {
        error: String(releaseError),
        executions: claimed.length,
      }),
    );
    const failures = failAll(group, error, deps);
    for (const executionId of claimed) {
      const messageId = byExecution.get(executionId)!;
      out.set(messageId, failures.get(messageId)!);
    }
    return out;
  }
  if (deps.budget) await addSpend(group.key, delta, deps.budget, deps, now);
  if (deps.evaluators) {
    // Only the executions this merge counted: a redelivered message is not judged again.
    const counted = claimed.map((executionId) => group.records.get(byExecution.get(executionId)!)!);
    await judgeExecutions(counted, deps.evaluators).catch((error: unknown) =>
      deps.logger?.error("runs not judged", { error: String(error) }),
    );
  }
  if (deps.rollback) {
    await checkRollback(deps.rollback, group.key.tenant, group.key.document, group.key.protocol).catch(
      (error: unknown) => deps.logger?.error("traffic split not judged", { error: String(error) }),
    );
  }
  const at = now();
  for (const executionId of claimed) {
    const messageId = byExecution.get(executionId)!;
    out.set(messageId, { status: "counted", executionId });
    const finished = Date.parse(group.records.get(messageId)!.finishedAt);
    if (deps.metrics && !Number.isNaN(finished)) {
      deps.metrics.addMetric(METRIC_QUEUE_LAG, MetricUnit.Milliseconds, Math.max(0, at - finished));
    }
  }
  return out;
}

/**
 * Adds the merge's priced cost to its tenant's month; when that crosses the tenant's budget,
 * emits BudgetExceeded (once: the addition is atomic, so one merge sees the crossing). A
 * failure is logged and the merge stands: the budget then undercounts, never the figures.
 */
async function addSpend(
  key: DayBucketKey,
  delta: ProtocolAggregate,
  budget: BudgetDeps,
  deps: AnalysisServiceDeps,
  now: () => number,
): Promise<void> {
  let usd = 0;
  for (const [model, usage] of delta.models.view().entries) {
    usd += costOf(priceOf(budget.prices, model), usage.promptTokens, usage.completionTokens) ?? 0;
  }
  if (usd <= 0) return;
  const month = new Date(now()).toISOString().slice(0, 7);
  try {
    const { before, after } = await budget.spend.add(key.tenant, month, usd);
    const limit = Object.hasOwn(budget.budgets, key.tenant) ? budget.budgets[key.tenant] : undefined;
    if (limit !== undefined && before < limit && after >= limit) {
      deps.metrics?.addMetric(METRIC_BUDGET_EXCEEDED, MetricUnit.Count, 1);
      deps.logger?.warn("monthly budget exceeded", {
        tenant: key.tenant,
        month,
        budgetUsd: limit,
        spentUsd: after,
      });
    }
  } catch (error) {
    deps.logger?.error("spend not counted", { tenant: key.tenant, error: String(error) });
  }
}

function failAll(group: Group, error: unknown, deps: AnalysisServiceDeps): Map<string, EventOutcome> {
  const code = (error as { code?: unknown })?.code;
  const failure: EventOutcome = {
    status: "failed",
    code: typeof code === "string" ? code : "analysis_write_failed",
    message: error instanceof Error ? error.message : String(error),
  };
  deps.logger?.error("analysis write failed", {
    tenant: group.key.tenant,
    document: group.key.document,
    protocol: group.key.protocol,
    day: group.key.day,
    error: failure.message,
  });
  return new Map([...group.records.keys()].map((messageId) => [messageId, failure]));
}
