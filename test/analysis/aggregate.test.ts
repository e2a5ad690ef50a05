import { MovaError } from "../../lib/errors.ts";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AGGREGATE_CAPS,
  type ProtocolAggregate,
  addExecution,
  aggregateFromJSON,
  aggregateToJSON,
  createAggregate,
  mergeAggregates,
  mergeInto,
} from "../../lib/analysis/aggregate.ts";
import { aggregateExecutions, reportFromAggregates } from "../../lib/analysis/analyze.ts";
import { extractPatterns } from "../../lib/analysis/patterns.ts";
import { computeStatistics } from "../../lib/analysis/statistics.ts";
import { type ExecutionRecord, ExecutionRecordSchema } from "../../lib/core/execution-record.ts";
import { extractTerms } from "../../lib/analysis/terms.ts";
import { seededRandom } from "../support/seeded-random.ts";
import { summarizeRecord } from "../../lib/core/record-size.ts";
import { longExecution } from "../support/runtime-fixtures.ts";

const KEY = { tenant: "acme", document: "support", protocol: "checkout" };
const MAX_STORED_BYTES = 300 * 1024;

const stepArbitrary = fc.record({
  id: fc.constantFrom("ask", "lookup", "decide", "charge", "reply", "done"),
  action: fc.constantFrom("prompt", "tool_api", "condition", "end"),
  status: fc.constantFrom("succeeded", "succeeded", "failed", "skipped"),
  attempts: fc.integer({ min: 0, max: 4 }),
  durationMs: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.double({ min: 0, max: 60_000, noNaN: true })),
  error: fc.option(
    fc.record({
      code: fc.constantFrom("timeout", "tool_http_status", "llm_error"),
      message: fc.constant("x"),
    }),
    {
      nil: undefined,
    },
  ),
  toolId: fc.option(fc.constantFrom("payments", "crm", "search"), { nil: undefined }),
  httpStatus: fc.option(fc.constantFrom(200, 404, 429, 503), { nil: undefined }),
  branch: fc.option(fc.constantFrom("then" as const, "else" as const), { nil: undefined }),
  prompt: fc.option(
    fc.constantFrom(
      "Summarise the order for {name} politely",
      "Переклади відповідь українською, будь ласка",
      "Explain the refund policy in two sentences",
      "Answer briefly: where is order 42?",
    ),
    { nil: undefined },
  ),
});

const recordArbitrary = fc
  .record({
    status: fc.constantFrom("completed", "completed", "failed", "timed_out", "waiting_input"),
    day: fc.integer({ min: 1, max: 28 }),
    durationMs: fc.integer({ min: 0, max: 100_000 }),
    steps: fc.array(stepArbitrary, { maxLength: 7 }),
    intent: fc.option(fc.constantFrom("buy", "refund", "ask"), { nil: undefined }),
    error: fc.option(fc.constantFrom("timeout", "llm_error", "max_steps"), { nil: undefined }),
  })
  .map(
    (r): ExecutionRecord =>
      ExecutionRecordSchema.parse({
        ...KEY,
        executionId: "x",
        documentVersion: 1,
        trigger: "api",
        status: r.status,
        startedAt: `2026-02-${String(r.day).padStart(2, "0")}T08:00:00.000Z`,
        finishedAt: `2026-02-${String(r.day).padStart(2, "0")}T08:01:00.000Z`,
        durationMs: r.durationMs,
        path: r.steps.map((s) => s.id),
        steps: r.steps.map((s) => ({ ...s, startedAt: "2026-02-01T08:00:00.000Z" })),
        intent: r.intent,
        error: r.error === undefined ? undefined : { code: r.error, message: "failed" },
      }),
  );

function aggregateOf(records: readonly ExecutionRecord[]): ProtocolAggregate {
  const aggregate = createAggregate(KEY);
  for (const record of records) addExecution(aggregate, record);
  return aggregate;
}

function figures(aggregate: ProtocolAggregate) {
  return {
    statistics: computeStatistics(aggregate),
    patterns: extractPatterns(aggregate, { minTermCount: 1, minLift: 1.01 }),
  };
}

/** Splits `items` at the given cut points (any, unsorted, out of range ignored). */
function split<T>(items: readonly T[], cuts: readonly number[]): T[][] {
  const points = [...new Set(cuts.map((c) => c % (items.length + 1)))].sort((a, b) => a - b);
  const batches: T[][] = [];
  let from = 0;
  for (const point of [...points, items.length]) {
    batches.push(items.slice(from, point));
    from = point;
  }
  return batches;
}

describe("ProtocolAggregate merging", () => {
  it("batches aggregated apart and merged in any order give the figures of the whole", () => {
    fc.assert(
      fc.property(
        fc.array(recordArbitrary, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.infiniteStream(fc.nat()),
        fc.boolean(),
        (records, cuts, choices, throughJson) => {
          const whole = aggregateOf(records);
          let pool = split(records, cuts).map(aggregateOf);
          // The incremental path stores aggregates and reads them back before merging.
          if (throughJson)
            pool = pool.map((a) => aggregateFromJSON(JSON.parse(JSON.stringify(aggregateToJSON(a)))));
          const pick = choices[Symbol.iterator]();
          while (pool.length > 1) {
            const [left] = pool.splice(pick.next().value! % pool.length, 1);
            const j = pick.next().value! % pool.length;
            pool[j] =
              pick.next().value! % 2 === 0
                ? mergeAggregates(left!, pool[j]!)
                : mergeAggregates(pool[j]!, left!);
          }
          const merged = pool[0]!;
          expect(figures(merged)).toEqual(figures(whole));
          expect(JSON.stringify(aggregateToJSON(merged))).toBe(JSON.stringify(aggregateToJSON(whole)));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("round-trips through its stored JSON with the same figures", () => {
    fc.assert(
      fc.property(fc.array(recordArbitrary, { maxLength: 30 }), (records) => {
        const aggregate = aggregateOf(records);
        const copy = aggregateFromJSON(JSON.parse(JSON.stringify(aggregateToJSON(aggregate))));
        expect(figures(copy)).toEqual(figures(aggregate));
        expect(aggregateToJSON(copy)).toEqual(aggregateToJSON(aggregate));
      }),
      { numRuns: 100 },
    );
  });

  it("mergeAggregates leaves both arguments unchanged", () => {
    const [a, b] = fc.sample(fc.array(recordArbitrary, { minLength: 5, maxLength: 10 }), {
      numRuns: 2,
      seed: 3,
    });
    const left = aggregateOf(a!);
    const right = aggregateOf(b!);
    const before = [JSON.stringify(aggregateToJSON(left)), JSON.stringify(aggregateToJSON(right))];
    const merged = mergeAggregates(left, right);
    expect(merged.executions).toBe(a!.length + b!.length);
    expect([JSON.stringify(aggregateToJSON(left)), JSON.stringify(aggregateToJSON(right))]).toEqual(before);
  });

  it("refuses to mix protocols and rejects corrupt stored aggregates with a code", () => {
    const other = createAggregate({ ...KEY, protocol: "refund" });
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(MovaError);
        return (error as MovaError).code;
      }
      return undefined;
    };
    const [record] = fc.sample(recordArbitrary, { numRuns: 1, seed: 1 });
    expect(codeOf(() => addExecution(other, record!))).toBe("aggregate_key_mismatch");
    expect(other.executions).toBe(0);
    expect(codeOf(() => mergeInto(createAggregate(KEY), other))).toBe("aggregate_key_mismatch");
    const stored = aggregateToJSON(aggregateOf([record!]));
    expect(codeOf(() => aggregateFromJSON({ ...stored, executions: -1 }))).toBe("invalid_aggregate");
    expect(codeOf(() => aggregateFromJSON({ ...stored, v: 2 }))).toBe("invalid_aggregate");
    expect(codeOf(() => aggregateFromJSON({ ...stored, duration: { ...stored.duration, n: 99 } }))).toBe(
      "invalid_sketch",
    );
  });
});

// ---- bounds and volume ------------------------------------------------------------------------

const WORDS =
  "alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega привіт замовлення доставка".split(" ");

/** A varied synthetic history: eight steps a run, retries, failures, branches, prompts. */
function* syntheticHistory(count: number, seed: number, wild = false): Generator<ExecutionRecord> {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  for (let i = 0; i < count; i++) {
    const steps: ExecutionRecord["steps"] = [];
    let failed = false;
    for (let s = 0; s < 8 && !failed; s++) {
      // `wild`: every run invents its step ids, tools and words, to push every map to its cap.
      const id = wild ? `step_${Math.floor(random() * 500)}_${"x".repeat(20)}` : `step_${s}`;
      const action = s === 3 ? "condition" : s % 2 === 0 ? "prompt" : "tool_api";
      failed = random() < 0.02;
      const attempts = random() < 0.1 ? 2 : 1;
      steps.push({
        id,
        action,
        status: failed ? "failed" : "succeeded",
        attempts,
        startedAt: "2026-02-01T00:00:00.000Z",
        // Log-uniform over 0.01 ms … 100 s when wild: every sketch as wide as it can get.
        durationMs: wild ? 10 ** (-2 + 7 * random()) : 20 + random() * 400,
        ...(failed
          ? { error: { code: pick(["timeout", "tool_http_status", "llm_error"]), message: "x" } }
          : {}),
        ...(action === "tool_api"
          ? { toolId: wild ? `tool_${Math.floor(random() * 200)}` : pick(["crm", "payments"]) }
          : {}),
        ...(action === "condition" ? { branch: random() < 0.7 ? ("then" as const) : ("else" as const) } : {}),
        ...(action === "prompt"
          ? {
              prompt: wild
                ? `${pick(WORDS)} word${Math.floor(random() * 100_000)} term${Math.floor(random() * 100_000)}`
                : `Please ${pick(WORDS)} the ${pick(WORDS)} for {name}`,
            }
          : {}),
      });
    }
    yield {
      ...KEY,
      executionId: `e${i}`,
      documentVersion: 1,
      trigger: "api",
      status: failed ? "failed" : "completed",
      startedAt: "2026-02-10T00:00:00.000Z",
      finishedAt: "2026-02-10T00:00:01.000Z",
      durationMs: steps.reduce((sum, s) => sum + s.durationMs, 0),
      path: steps.map((s) => s.id),
      steps,
      unresolved: [],
      offline: false,
      analysis: "published",
      ...(random() < 0.5 ? { intent: wild ? `intent_${Math.floor(random() * 1000)}` : "buy" } : {}),
    };
  }
}

/** A completed run of one prompt step (`ask`), failed or not, with `prompt` as its rendered prompt. */
function promptRecord(i: number, prompt: string, failed: boolean) {
  return ExecutionRecordSchema.parse({
    ...KEY,
    executionId: `p${i}`,
    documentVersion: 1,
    trigger: "api",
    status: "completed",
    startedAt: "2026-02-10T00:00:00.000Z",
    finishedAt: "2026-02-10T00:00:01.000Z",
    durationMs: 1,
    path: ["ask"],
    steps: [
      {
        id: "ask",
        action: "prompt",
        status: failed ? "failed" : "succeeded",
        attempts: 1,
        startedAt: "2026-02-10T00:00:00.000Z",
        durationMs: 1,
        prompt,
      },
    ],
  });
}

describe("ProtocolAggregate bounds", () => {
  it("counts prompt terms exactly past the buffer of distinct prompts", () => {
    const aggregate = createAggregate(KEY);
    // 20,000 distinct prompts: more than the term tally buffers (16,384) before it settles.
    for (let i = 0; i < 20_000; i++) {
      addExecution(aggregate, promptRecord(i, `Common request number x${i}`, i % 4 === 0));
    }
    // "common" is in every prompt: 15,000 succeeded, 5,000 failed (every 4th).
    expect(aggregate.terms.peek("common")).toEqual({ succeeded: 15_000, failed: 5_000 });
    expect(aggregate.promptSteps).toEqual({ succeeded: 15_000, failed: 5_000 });
    const { entries, other } = aggregate.terms.view();
    // Three terms in every prompt (ties ordered by term), then 20,000 one-off terms x0 … x19999.
    expect(entries.slice(0, 3).map(([term]) => term)).toEqual(["common", "number", "request"]);
    const all = [...entries.map(([, t]) => t), other!].reduce((sum, t) => sum + t.succeeded + t.failed, 0);
    expect(all).toBe(20_000 * 4);
  });

  it("counts prompt terms exactly when the term cache starts over, with prompts too long to remember", () => {
    const aggregate = createAggregate(KEY);
    let termsCounted = 0;
    // 18,000 distinct prompts (the term cache starts over past 16,384, and so do the numbers
    // of its lists), every 5th longer than the cache keeps (its list made anew each time),
    // every 50th repeating an earlier one.
    for (let i = 0; i < 18_000; i++) {
      const n = i % 50 === 49 ? i - 40 : i;
      const prompt = n % 5 === 0 ? `Common request ${`filler${n} `.repeat(120)}` : `Common request x${n}`;
      termsCounted += extractTerms(prompt).length;
      addExecution(aggregate, promptRecord(i, prompt, i % 3 === 0));
    }
    expect(aggregate.terms.peek("common")).toEqual({ succeeded: 12_000, failed: 6_000 });
    expect(aggregate.terms.peek("request")).toEqual({ succeeded: 12_000, failed: 6_000 });
    const { entries, other } = aggregate.terms.view();
    const all = [...entries.map(([, t]) => t), other!].reduce((sum, t) => sum + t.succeeded + t.failed, 0);
    expect(all).toBe(termsCounted);
  });

  it("aggregates 10,000 synthetic records and stays a few KB", async () => {
    const { aggregates, records } = await aggregateExecutions(syntheticHistory(10_000, 5), {
      now: new Date("2026-02-20T00:00:00.000Z"),
    });
    expect(records.analysed).toBe(10_000);
    expect(aggregates).toHaveLength(1);
    const aggregate = aggregates[0]!;
    expect(aggregate.executions).toBe(10_000);
    const bytes = JSON.stringify(aggregateToJSON(aggregate)).length;
    expect(bytes).toBeLessThan(30 * 1024);
    const report = reportFromAggregates(aggregates);
    expect(report.protocols[0]!.statistics.total).toBe(10_000);
  });

  it("stays under 300 KB when every map overflows and every sketch is as wide as allowed", async () => {
    const { aggregates } = await aggregateExecutions(syntheticHistory(10_000, 9, true), {
      now: new Date("2026-02-20T00:00:00.000Z"),
    });
    const aggregate = aggregates[0]!;
    const json = aggregateToJSON(aggregate);
    expect(JSON.stringify(json).length).toBeLessThan(MAX_STORED_BYTES);
    expect(Object.keys(json.steps.e)).toHaveLength(AGGREGATE_CAPS.steps);
    expect(Object.keys(json.tools.e)).toHaveLength(AGGREGATE_CAPS.tools);
    expect(Object.keys(json.terms.e)).toHaveLength(AGGREGATE_CAPS.terms);
    expect(Object.keys(json.intents.e)).toHaveLength(AGGREGATE_CAPS.intents);
    // Folding keeps the totals: kept + other = all.
    const steps = [...Object.values(json.steps.e), json.steps.o!];
    const stepRecords = steps.reduce((sum, s) => sum + s.total, 0);
    let expected = 0;
    for (const record of syntheticHistory(10_000, 9, true)) expected += record.steps.length;
    expect(stepRecords).toBe(expected);
    const intentRuns = [...Object.values(json.intents.e), json.intents.o!].reduce(
      (sum, i) => sum + i.runs,
      0,
    );
    expect(intentRuns).toBe(
      aggregate.intents.view().entries.reduce((s, [, i]) => s + i.runs, 0) +
        aggregate.intents.view().other!.runs,
    );
    // And the stored form reads back, still bounded.
    const copy = aggregateFromJSON(JSON.parse(JSON.stringify(json)));
    expect(JSON.stringify(aggregateToJSON(copy))).toBe(JSON.stringify(json));
  });
});

describe("a long run's summary", () => {
  it("counts the run whole and puts its failure at the step the summary names", () => {
    const record = longExecution(3_000, {
      status: "timed_out",
      error: { code: "timeout", message: "deadline" },
    });
    record.steps[2_999] = { ...record.steps[2_999]!, id: "give_up" };
    record.path[2_999] = "give_up";
    const summary = summarizeRecord(record);
    expect(summary.steps.length).toBeLessThan(3_000);
    const aggregate = createAggregate({ ...KEY, document: "support", protocol: "refund" });
    addExecution(aggregate, summary);
    const json = aggregateToJSON(aggregate);
    expect(json.executions).toBe(1);
    expect(json.timedOut).toBe(1);
    const steps = json.steps.e;
    expect(steps.give_up?.failedRuns).toBe(1);
    expect(steps.count?.failedRuns).toBe(0);
    // The step figures count the step records the summary holds.
    expect((steps.check?.total ?? 0) + (steps.count?.total ?? 0)).toBe(summary.steps.length);
  });
});
