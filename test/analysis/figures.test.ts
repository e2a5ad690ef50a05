/**
 * Every figure of the analysis on a small hand-made history (test/fixtures/analysis), against
 * values computed by hand. Latency percentiles come from the sketch, which reports the value of
 * rank ⌊q·(n − 1)⌋ within 1% (exact when that value is the min or the max), so they are
 * compared with `near` (1% relative); everything else is exact.
 *
 * The order_status history (11 runs in the window; exec-13 is outside it, exec-14 another tenant):
 *   run  status     duration  path (ce=check_email lo=lookup_order lc=lookup_customer cs=check_status)
 *   01   completed   560      ce lo(100) lc(50) cs:then summarise(400) notify_vip:skipped done
 *   02   completed   690      ce lo(120, 2 attempts) lc(60) cs:then summarise(500) notify_vip(80) done
 *   03   completed   610      ce lo(110) lc(40) cs:then summarise(450) notify_vip:skipped done
 *   04   completed   510      ce lo(130) lc(70) cs:else apologise(300) done
 *   05   completed   500      ce lo(90) lc(55) cs:else apologise(350) done
 *   06   failed     3005      ce lo(3000, 3 attempts, timeout)
 *   07   failed      905      ce lo(900, 3 attempts, tool_http_status 503)
 *   08   failed      135      ce lo(100) lc(30, tool_http_status 404)
 *   09   failed     2155      ce lo(105) lc(45) cs:then summarise(2000, 2 attempts, llm_error)
 *   10   timed_out  5000      ce lo(115) lc(50) cs:then, deadline while in summarise (no record)
 *   11   failed     1665      ce lo(95) lc(65) cs:else apologise(1500, llm_error)
 * check_email runs 1 ms and always goes "then"; check_status 1 ms; done 0 ms.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { analyzeExecutions, type ProtocolReport } from "../../lib/analysis/analyze.ts";
import type {
  FailurePointPattern,
  IntentPattern,
  PromptPattern,
  StrategyPattern,
  ToolSelectionPattern,
} from "../../lib/analysis/patterns.ts";
import { actionable, applyPatch } from "../../lib/analysis/patches.ts";
import { extractTerms } from "../../lib/analysis/terms.ts";
import { ExecutionRecordSchema } from "../../lib/core/execution-record.ts";
import { MovaDocument } from "../../lib/mova/schema.ts";
import { validateDocument } from "../../lib/mova/validate.ts";

const fixtures = new URL("../fixtures/analysis/", import.meta.url);
const records = (JSON.parse(readFileSync(new URL("history.json", fixtures), "utf8")) as unknown[]).map((r) =>
  ExecutionRecordSchema.parse(r),
);
const document = MovaDocument.parse(JSON.parse(readFileSync(new URL("document.json", fixtures), "utf8")));
const now = new Date("2026-03-20T00:00:00.000Z");

/** Within the sketch's 1% relative error. */
function near(actual: number | null | undefined, expected: number): void {
  expect(actual).not.toBeNull();
  expect(actual).toBeDefined();
  expect(Math.abs(actual! - expected)).toBeLessThanOrEqual(expected * 0.01 + 0.005);
}

async function analyse() {
  return analyzeExecutions(records, {
    tenant: "acme",
    now,
    timeRangeDays: 30,
    documents: (name) => (name === "support" ? document : undefined),
    recommendations: { minRuns: 5, minStepRuns: 5, slowStepP95Ms: 800 },
  });
}

async function orderStatus(): Promise<ProtocolReport> {
  const report = await analyse();
  return report.protocols.find((p) => p.protocol === "order_status")!;
}

describe("analysis report on the fixture history", () => {
  it("reads every record once and keeps those of the tenant in the window", async () => {
    const report = await analyse();
    // 14 records: exec-13 started 2026-01-01, before 2026-03-20 − 30 days = 2026-02-18; exec-14 is globex's.
    expect(report.records).toEqual({ read: 14, analysed: 12, outsideWindow: 1, filteredOut: 1 });
    expect(report.window).toEqual({
      from: "2026-02-18T00:00:00.000Z",
      to: "2026-03-20T00:00:00.000Z",
      days: 30,
    });
    expect(report.generatedAt).toBe("2026-03-20T00:00:00.000Z");
    expect(report.protocols.map((p) => `${p.tenant}/${p.document}/${p.protocol}`)).toEqual([
      "acme/support/order_status",
      "acme/support/refund",
    ]);
  });

  it("execution statistics", async () => {
    const { statistics } = await orderStatus();
    // completed 01–05 = 5; failed 06, 07, 08, 09, 11 + timed_out 10 = 6; total 11.
    expect(statistics.total).toBe(11);
    expect(statistics.successful).toBe(5);
    expect(statistics.failed).toBe(6);
    expect(statistics.timedOut).toBe(1);
    expect(statistics.waitingInput).toBe(0);
    // 5 / 11 = 0.454545… → 0.4545
    expect(statistics.successRate).toBe(0.4545);
    // Durations sorted: 135 500 510 560 610 690 905 1665 2155 3005 5000 (n = 11).
    // p50: rank ⌊0.5·10⌋ = 5 → 690; p95: ⌊9.5⌋ = 9 → 3005; p99: ⌊9.9⌋ = 9 → 3005.
    near(statistics.duration.p50, 690);
    near(statistics.duration.p95, 3005);
    near(statistics.duration.p99, 3005);
    expect(statistics.duration.min).toBe(135);
    expect(statistics.duration.max).toBe(5000);
    // Sum 15,735 / 11 = 1430.4545… → 1430.45
    expect(statistics.duration.mean).toBe(1430.45);
  });

  it("step statistics, in document order", async () => {
    const { statistics } = await orderStatus();
    expect(statistics.steps.map((s) => s.step)).toEqual([
      "check_email",
      "lookup_order",
      "lookup_customer",
      "check_status",
      "summarise",
      "notify_vip",
      "apologise",
      "done",
    ]);
    const step = (id: string) => statistics.steps.find((s) => s.step === id)!;

    const lookupOrder = step("lookup_order");
    // In all 11 runs; failed in 06 and 07 → 9 succeeded; 9 / 11 = 0.81818 → 0.8182.
    expect(lookupOrder).toMatchObject({
      action: "tool_api",
      total: 11,
      succeeded: 9,
      failed: 2,
      skipped: 0,
      successRate: 0.8182,
    });
    // Attempts: 8 runs × 1 + 02: 2 + 06: 3 + 07: 3 = 16; retries (attempts − 1): 1 + 2 + 2 = 5.
    expect(lookupOrder.attempts).toBe(16);
    expect(lookupOrder.retries).toBe(5);
    // Latencies sorted: 90 95 100 100 105 110 115 120 130 900 3000.
    // p50: rank 5 → 110; p95: rank ⌊9.5⌋ = 9 → 900; p99: rank ⌊9.9⌋ = 9 → 900.
    near(lookupOrder.latency.p50, 110);
    near(lookupOrder.latency.p95, 900);
    near(lookupOrder.latency.p99, 900);

    // Runs 01–05, 08–11 = 9; failed in 08 → 8 / 9 = 0.8889.
    const lookupCustomer = step("lookup_customer");
    expect(lookupCustomer).toMatchObject({
      total: 9,
      succeeded: 8,
      failed: 1,
      skipped: 0,
      successRate: 0.8889,
      retries: 0,
    });
    // Sorted: 30 40 45 50 50 55 60 65 70: p50 rank 4 → 50; p95 rank ⌊7.6⌋ = 7 → 65.
    near(lookupCustomer.latency.p50, 50);
    near(lookupCustomer.latency.p95, 65);

    // Skipped in 01 and 03, ran (80 ms) in 02: success rate over the run that ran = 1.
    expect(step("notify_vip")).toMatchObject({
      total: 3,
      succeeded: 1,
      failed: 0,
      skipped: 2,
      successRate: 1,
    });
    expect(step("notify_vip").latency.p50).toBe(80); // a single value is the min and the max: exact

    // summarise: 01, 02, 03 succeeded, 09 failed (2 attempts) → 3 / 4 = 0.75, 1 retry.
    expect(step("summarise")).toMatchObject({
      action: "prompt",
      total: 4,
      succeeded: 3,
      failed: 1,
      successRate: 0.75,
      retries: 1,
    });
    // 400 450 500 2000: p50 rank ⌊1.5⌋ = 1 → 450.
    near(step("summarise").latency.p50, 450);
    // apologise: 04, 05 succeeded, 11 failed → 2 / 3 = 0.6667.
    expect(step("apologise")).toMatchObject({ total: 3, succeeded: 2, failed: 1, successRate: 0.6667 });
    expect(step("check_status")).toMatchObject({
      action: "condition",
      total: 8,
      succeeded: 8,
      successRate: 1,
    });
    expect(step("done")).toMatchObject({ action: "end", total: 5, succeeded: 5 });
    expect(step("done").latency.p50).toBe(0);
  });

  it("strategy patterns: successful paths with their success rate when taken", async () => {
    const strategies = (await orderStatus()).patterns.filter(
      (p): p is StrategyPattern => p.type === "strategy",
    );
    expect(strategies.map((s) => s.path.join(" > "))).toEqual([
      "check_email > lookup_order > lookup_customer > check_status > summarise > notify_vip > done",
      "check_email > lookup_order > lookup_customer > check_status > apologise > done",
    ]);
    const [shipped, delayed] = strategies;
    // Shipped path: completed by 01, 02, 03 = 3 of 5 successes = 0.6. Failed on the way (their
    // path is a prefix of it): 06, 07 (ce lo), 08 (ce lo lc), 09, 10 (… cs summarise) = 5;
    // taken = 3 + 5 = 8; 3 / 8 = 0.375.
    expect(shipped!.figures).toMatchObject({
      runs: 3,
      shareOfSuccesses: 0.6,
      taken: 8,
      successRateWhenTaken: 0.375,
    });
    // Durations 560 610 690: median rank 1 → 610.
    near(shipped!.figures.medianDurationMs, 610);
    // Delayed path: 04, 05 = 2 of 5 = 0.4. On the way and failed: 06, 07, 08, 11 = 4;
    // taken = 6; 2 / 6 = 0.3333. Durations 500 510: median rank ⌊0.5⌋ = 0 → 500 (the min: exact).
    expect(delayed!.figures).toEqual({
      runs: 2,
      shareOfSuccesses: 0.4,
      taken: 6,
      successRateWhenTaken: 0.3333,
      medianDurationMs: 500,
    });
  });

  it("failure points: where runs fail, their share and error codes", async () => {
    const points = (await orderStatus()).patterns.filter(
      (p): p is FailurePointPattern => p.type === "failure_point",
    );
    // 6 failed runs end at: lookup_order (06, 07), summarise (09 failed there; 10 timed out in it),
    // lookup_customer (08), apologise (11). Ties by failed step records, then by id.
    expect(points.map((p) => [p.step, p.figures.failedRuns, p.figures.shareOfFailedRuns])).toEqual([
      ["lookup_order", 2, 0.3333], // 2 / 6
      ["summarise", 2, 0.3333], // 2 / 6
      ["apologise", 1, 0.1667], // 1 / 6
      ["lookup_customer", 1, 0.1667], // 1 / 6
    ]);
    const at = (id: string) => points.find((p) => p.step === id)!.figures;
    // lookup_order: 2 failed of 11 = 0.1818; codes: timeout (06), tool_http_status with HTTP 503 (07).
    expect(at("lookup_order")).toMatchObject({ failures: 2, failureRate: 0.1818 });
    expect(at("lookup_order").topErrorCodes).toEqual([
      { code: "timeout", count: 1 },
      { code: "tool_http_status:503", count: 1 },
    ]);
    // summarise: one failed record (09) of 4 = 0.25: the timed-out run left no record of it.
    expect(at("summarise")).toMatchObject({
      failures: 1,
      failureRate: 0.25,
      topErrorCodes: [{ code: "llm_error", count: 1 }],
    });
    expect(at("lookup_customer").topErrorCodes).toEqual([{ code: "tool_http_status:404", count: 1 }]);
  });

  it("tool selection: calls, success rate, latency and retries per tool", async () => {
    const tools = (await orderStatus()).patterns.filter(
      (p): p is ToolSelectionPattern => p.type === "tool_selection",
    );
    expect(tools.map((t) => t.tool)).toEqual(["orders_api", "crm_api", "notify_api"]); // by calls: 11, 9, 1
    const orders = tools[0]!.figures;
    // 11 calls, 9 succeeded → 0.8182; attempts 16, retries 5 (as lookup_order above).
    expect(orders).toMatchObject({
      calls: 11,
      succeeded: 9,
      failed: 2,
      successRate: 0.8182,
      attempts: 16,
      retries: 5,
    });
    near(orders.latency.p50, 110);
    near(orders.latency.p95, 900);
    near(orders.latency.p99, 900);
    expect(orders.latency.max).toBe(3000);
    const crm = tools[1]!.figures;
    // 9 calls, 8 succeeded → 0.8889, no retries; p99 rank ⌊8·0.99⌋ = 7 → 65.
    expect(crm).toMatchObject({ calls: 9, succeeded: 8, failed: 1, successRate: 0.8889, retries: 0 });
    near(crm.latency.p99, 65);
    expect(tools[2]!.figures).toMatchObject({ calls: 1, succeeded: 1, successRate: 1, retries: 0 });
  });

  it("prompt patterns: terms over-represented in succeeded or failed prompts", async () => {
    // The 7 prompts that ran (S = 5 succeeded, F = 2 failed), as terms (stop words, numbers,
    // the {tracking_url} placeholder dropped):
    //   01 ✓ tell olena order shipped today thank customer warmly
    //   02 ✓ tell petro order shipped today thank customer warmly
    //   03 ✓ tell mark order shipped today thank customer
    //   04 ✓ apologise anna order delayed thank customer
    //   05 ✓ apologise ivan order delayed attach invoice
    //   09 ✗ tell dmytro order shipped today include tracking full invoice
    //   11 ✗ apologise oksana order delayed include full invoice refund policy
    expect(
      extractTerms(
        "Tell Dmytro the order shipped today. Include tracking {tracking_url} and the full invoice.",
      ),
    ).toEqual(["tell", "dmytro", "order", "shipped", "today", "include", "tracking", "full", "invoice"]);
    const prompts = (await orderStatus()).patterns.filter((p): p is PromptPattern => p.type === "prompt");
    // lift = ((s + 1) / (S + 2)) / ((f + 1) / (F + 2)), terms in ≥ 3 prompts, lift ≥ 1.5 or ≤ 1/1.5:
    //   customer (4, 0): (5/7) / (1/4) = 20/7 = 2.857142… → success
    //   thank    (4, 0): 20/7                               → success
    //   invoice  (1, 2): (2/7) / (3/4) = 8/21 = 0.380952… → failure
    //   order (5, 2): (6/7)/(3/4) = 1.1429; tell, shipped, today (3, 1): (4/7)/(2/4) = 1.1429;
    //   apologise, delayed (2, 1): (3/7)/(2/4) = 0.8571: not far enough from 1.
    //   include, full (0, 2), warmly (2, 0): in fewer than 3 prompts.
    expect(
      prompts.map((p) => [p.term, p.direction, p.figures.lift, p.figures.succeeded, p.figures.failed]),
    ).toEqual([
      ["customer", "success", 2.8571, 4, 0],
      ["thank", "success", 2.8571, 4, 0],
      ["invoice", "failure", 0.381, 1, 2],
    ]);
    expect(prompts[0]!.figures).toMatchObject({ totalSucceeded: 5, totalFailed: 2 });
  });

  it("intent patterns: outcomes per recognised intent", async () => {
    const intents = (await orderStatus()).patterns.filter((p): p is IntentPattern => p.type === "intent");
    expect(intents).toEqual([
      {
        type: "intent",
        protocol: "order_status",
        intent: "order_status_inquiry",
        // 01, 02 completed; 06, 09 failed: 2 / 4 each way.
        figures: {
          runs: 4,
          completed: 2,
          failed: 2,
          timedOut: 0,
          waitingInput: 0,
          successRate: 0.5,
          failureRate: 0.5,
        },
      },
      {
        type: "intent",
        protocol: "order_status",
        intent: "delivery_complaint",
        // 04 completed, 10 timed out.
        figures: {
          runs: 2,
          completed: 1,
          failed: 1,
          timedOut: 1,
          waitingInput: 0,
          successRate: 0.5,
          failureRate: 0.5,
        },
      },
    ]);
  });

  it("recommendations, each with its evidence", async () => {
    const { recommendations } = await orderStatus();
    expect(recommendations.map((r) => [r.kind, r.step])).toEqual([
      ["low_success_rate", undefined],
      ["failing_step", "lookup_order"],
      ["failing_step", "lookup_customer"],
      ["slow_step", "lookup_order"],
      ["branch_never_taken", "check_email"],
      ["parallelize", "lookup_order"],
    ]);
    const [low, retry, validation, slow, branch, parallel] = recommendations;

    // 5 of 11 finished = 0.4545 < 0.8 (with ≥ 5 runs); most failed runs end at lookup_order (2 of 6).
    expect(low!.evidence).toEqual({
      successful: 5,
      failed: 6,
      timedOut: 1,
      finished: 11,
      successRate: 0.4545,
      threshold: 0.8,
      // What its failures suggest, as failing_step says of it (both retryable: timeout, 503).
      topFailurePoint: {
        step: "lookup_order",
        failedRuns: 2,
        failures: 2,
        suggestion: "retry",
        retryableFailures: 2,
      },
    });
    expect(low!.message).toBe(
      'Protocol "order_status" succeeds in 45.5% of its runs (5 of 11), below 80%. Most failed runs end at step "lookup_order" (2 of 6).',
    );

    // lookup_order: 2 / 11 = 18.18% ≥ 10%; both codes retryable (timeout, HTTP 503); the
    // document already retries it 3 times.
    expect(retry!.evidence).toMatchObject({
      suggestion: "retry",
      failures: 2,
      ran: 11,
      failureRate: 0.1818,
      retryableFailures: 2,
      validationFailures: 0,
      configuredAttempts: 3,
    });
    expect(retry!.message).toContain("already tries 3 times");

    // lookup_customer: 1 / 9 = 11.11% ≥ 10%; HTTP 404 is not retryable: validate its input,
    // which the crm_api tool reads as {customer_email}.
    expect(validation!.evidence).toMatchObject({
      suggestion: "validation",
      failures: 1,
      ran: 9,
      failureRate: 0.1111,
    });
    expect(validation!.message).toContain("{customer_email}");

    // lookup_order p95 ≈ 900 ms > 800 ms. Its share of run time: 4865 / 15735 = 0.3092 (< 0.5).
    expect(slow!.evidence).toMatchObject({ ran: 11, p95ThresholdMs: 800, shareOfRunTime: 0.3092 });
    near(slow!.evidence.p95Ms as number, 900);

    // check_email evaluated 11 times, always "then": its else way (to ask_email) never taken.
    // Its else way asks for the e-mail address: a guard of input, kept. 0 of 11 runs: the
    // case's rate is below 1 − 0.05^(1/11) = 0.2384 with 95 % confidence.
    expect(branch!.evidence).toEqual({
      evaluated: 11,
      thenTaken: 11,
      elseTaken: 0,
      neverTaken: "else",
      target: "ask_email",
      guard: "asks_again",
      upperBoundRate: 0.2384,
    });
    expect(branch!.message).toBe(
      'Condition "check_email" went the then way in all 11 runs; its else way (to step "ask_email") was never taken: it looks like a guard (that way asks again), and a case none of 11 runs had may still come in up to 23.8% of runs (95% bound): keep it unless the case cannot happen.',
    );

    // lookup_order reads {order_id} and writes `order`; lookup_customer reads {customer_email} and
    // writes `customer`: independent. Saving per run = 110 + 50 − max(110, 50) = 50 ms (the median
    // of lookup_customer), over min(11, 9) = 9 runs ≈ 450 ms.
    expect(parallel!.evidence.runs).toBe(9);
    near(parallel!.evidence.savedMsPerRun as number, 50);
    near(parallel!.evidence.savedMsTotal as number, 450);
    expect(parallel!.message).toContain('"steps": ["lookup_order","lookup_customer"]');
  });

  it("every recommendation but a guard's carries a patch against the document as sent that applies and validates", async () => {
    const source = JSON.parse(readFileSync(new URL("document.json", fixtures), "utf8"));
    const recommendations = actionable((await orderStatus()).recommendations, source, 1);
    // check_email guards input (its else way asks for the address): no change is proposed.
    const guard = recommendations.find((r) => r.kind === "branch_never_taken");
    expect(guard?.patch).toBeNull();
    for (const recommendation of recommendations.filter((r) => r !== guard)) {
      expect(recommendation.patch, recommendation.kind).not.toBeNull();
      const patched = applyPatch(source, recommendation.patch!);
      expect(patched.ok, recommendation.kind).toBe(true);
      expect(validateDocument(patched.ok ? patched.document : undefined).errors).toEqual([]);
    }
    // low_success_rate's top failure point is lookup_order: the very patch failing_step gives it.
    expect(recommendations[0]!.patch).toEqual(recommendations[1]!.patch);
  });

  it("recommends nothing about the document's structure without the document", async () => {
    const report = await analyzeExecutions(records, {
      tenant: "acme",
      now,
      recommendations: { minRuns: 5, minStepRuns: 5, slowStepP95Ms: 800 },
    });
    const kinds = report.protocols
      .find((p) => p.protocol === "order_status")!
      .recommendations.map((r) => r.kind);
    expect(kinds).not.toContain("parallelize");
    // The branch is still seen from the records, without its target.
    expect(kinds).toContain("branch_never_taken");
  });

  it("recommends nothing from too few runs", async () => {
    const report = await analyzeExecutions(records, { tenant: "acme", now, documents: () => document });
    const recommendations = report.protocols.find((p) => p.protocol === "order_status")!.recommendations;
    // Defaults: 20 runs for the protocol and a branch (11 here), 10 per step. Only lookup_order
    // ran 10 times or more (11, failing 18% ≥ 10%); lookup_customer ran 9 times. The parallel
    // opportunity needs no sample. p95 900 ms < 5000 ms, share 0.31 < 0.5: nothing slow.
    expect(recommendations.map((r) => [r.kind, r.step])).toEqual([
      ["failing_step", "lookup_order"],
      ["parallelize", "lookup_order"],
    ]);
  });
});
