/**
 * Recommendations for one protocol, each with the figures that justify it. Thresholds are
 * options with defaults; nothing is recommended from fewer runs than the minimum sample.
 *
 * - `low_success_rate`: finished runs ≥ minRuns and success rate < lowSuccessRate. Its top
 *   failure point carries what that step's failures suggest (as `failing_step` below), so
 *   that its patch is the one `failing_step` gives the step.
 * - `failing_step`: a step that ran ≥ minStepRuns times and failed in ≥ stepFailureRate of
 *   them. The suggestion follows the error codes: `retry` when most failures are retryable
 *   (timeouts, network errors, HTTP 408/429/5xx), `validation` when most are not (HTTP 4xx,
 *   invalid input, conditions), else `investigate`.
 * - `slow_step`: a step (other than `input`, which waits for a person) that ran ≥ minStepRuns
 *   times whose p95 exceeds slowStepP95Ms, or whose summed latency is ≥ slowStepShare of the
 *   summed duration of all runs. Its evidence has the median and p95, and the completion
 *   tokens per successful call (for a prompt step's `max_tokens`).
 * - `branch_never_taken`: a condition step evaluated ≥ minRuns times whose `then` or `else`
 *   way was never taken (the document names where that way leads). When that way asks again
 *   (it leads to an `input` step) or goes back (to the condition or a step before it), the
 *   condition is taken for a guard of input that has simply been good so far: the evidence
 *   says so (`guard`) and how often the case may still come up (`upperBoundRate`, the 95 %
 *   upper bound of a rate seen 0 times in the runs), and no change is proposed.
 * - `parallelize` (document needed): consecutive `prompt`/`tool_api` steps, the later reached
 *   only from the earlier, neither guarded nor a branch of a `parallel` step, none reading
 *   another's output variable (placeholders of prompts, system texts and the called tool's
 *   endpoint, headers, parameters and authentication). Saving per run = the sum of their
 *   median latencies minus the largest (for two steps: the shorter median); the total is that
 *   times the runs (the fewest runs of any step in the group).
 */
import type { ProtocolAggregate, StepAggregate } from "./aggregate.ts";
import type { MovaDocument, Protocol, Step } from "../mova/schema.ts";
import { placeholdersOf } from "../mova/placeholders.ts";
import { allRules, conditionTargets, hasConditions } from "../mova/conditions.ts";
import { compileOperand, operandPaths } from "../mova/expression.ts";
import { followingStepId } from "../mova/steps.ts";
import { round } from "./statistics.ts";

const RECOMMENDATION_KINDS = [
  "low_success_rate",
  "failing_step",
  "slow_step",
  "branch_never_taken",
  "parallelize",
] as const;
type RecommendationKind = (typeof RECOMMENDATION_KINDS)[number];

export interface Recommendation {
  kind: RecommendationKind;
  protocol: string;
  /** The step concerned; for `parallelize`, the first step of the group. */
  step?: string;
  message: string;
  evidence: Record<string, unknown>;
}

export interface RecommendationOptions {
  /** Default 20. */
  minRuns?: number;
  /** Default 0.8. */
  lowSuccessRate?: number;
  /** Default 10. */
  minStepRuns?: number;
  /** Default 0.1. */
  stepFailureRate?: number;
  /** Default 5000. */
  slowStepP95Ms?: number;
  /** Default 0.5. */
  slowStepShare?: number;
}

const DEFAULTS: Required<RecommendationOptions> = {
  minRuns: 20,
  lowSuccessRate: 0.8,
  minStepRuns: 10,
  stepFailureRate: 0.1,
  slowStepP95Ms: 5000,
  slowStepShare: 0.5,
};

const percent = (fraction: number): string => `${round(fraction * 100, 1)}%`;
const millis = (ms: number): string => `${round(ms, 0).toLocaleString("en-US")} ms`;

type ErrorClass = "retryable" | "validation" | "other";

/** Classifies a step error key (`code` or `code:<http status>`) by whether a retry may help. */
function classifyError(key: string): ErrorClass {
  const match = /^(.*):(\d{3})$/.exec(key);
  const code = match ? match[1]! : key;
  const status = match ? Number(match[2]) : undefined;
  if (status !== undefined) {
    if (status === 408 || status === 429 || status >= 500) return "retryable";
    if (status >= 400) return "validation";
  }
  if (/timeout|timed_out|network|econn|socket|unavailable|rate_limit|throttl|overload/i.test(code))
    return "retryable";
  if (/invalid|validation|condition|schema|unresolved|not_found|bad_request|parse/i.test(code))
    return "validation";
  return "other";
}

type Suggestion = "retry" | "validation" | "investigate";

/** A step's failures by error code and class, and what they suggest. */
function failureBreakdown(step: StepAggregate): {
  errorCodes: Array<{ code: string; count: number; class: ErrorClass }>;
  retryable: number;
  validation: number;
  suggestion: Suggestion;
} {
  const errorCodes = step.errors
    .view()
    .entries.map(([code, c]) => ({ code, count: c.n, class: classifyError(code) }));
  const retryable = errorCodes.filter((e) => e.class === "retryable").reduce((sum, e) => sum + e.count, 0);
  const validation = errorCodes.filter((e) => e.class === "validation").reduce((sum, e) => sum + e.count, 0);
  // A step that never failed itself (runs stopped while in it) has no errors to go by.
  const suggestion: Suggestion =
    step.failed === 0
      ? "investigate"
      : retryable * 2 >= step.failed
        ? "retry"
        : validation * 2 >= step.failed
          ? "validation"
          : "investigate";
  return { errorCodes, retryable, validation, suggestion };
}

function lowSuccessRate(aggregate: ProtocolAggregate, o: Required<RecommendationOptions>): Recommendation[] {
  const finished = aggregate.completed + aggregate.failed;
  if (finished < o.minRuns) return [];
  const successRate = aggregate.completed / finished;
  if (successRate >= o.lowSuccessRate) return [];
  let worst: [string, StepAggregate] | undefined;
  for (const entry of aggregate.steps.view().entries) {
    if (entry[1].failedRuns > (worst?.[1].failedRuns ?? 0)) worst = entry;
  }
  const where = worst
    ? ` Most failed runs end at step "${worst[0]}" (${worst[1].failedRuns} of ${aggregate.failed}).`
    : "";
  return [
    {
      kind: "low_success_rate",
      protocol: aggregate.protocol,
      message: `Protocol "${aggregate.protocol}" succeeds in ${percent(successRate)} of its runs (${aggregate.completed} of ${finished}), below ${percent(o.lowSuccessRate)}.${where}`,
      evidence: {
        successful: aggregate.completed,
        failed: aggregate.failed,
        timedOut: aggregate.timedOut,
        finished,
        successRate: round(successRate, 4),
        threshold: o.lowSuccessRate,
        topFailurePoint: worst ? topFailurePoint(worst[0], worst[1]) : null,
      },
    },
  ];
}

/** The step most failed runs end at, with what its failures suggest (as `failing_step` says of it). */
function topFailurePoint(id: string, step: StepAggregate) {
  const { retryable, suggestion } = failureBreakdown(step);
  return {
    step: id,
    failedRuns: step.failedRuns,
    failures: step.failed,
    suggestion,
    retryableFailures: retryable,
  };
}

function failingSteps(
  aggregate: ProtocolAggregate,
  protocol: Protocol | undefined,
  document: MovaDocument | undefined,
  o: Required<RecommendationOptions>,
): Recommendation[] {
  const out: Recommendation[] = [];
  for (const [id, step] of aggregate.steps.view().entries) {
    const ran = step.succeeded + step.failed;
    if (ran < o.minStepRuns || step.failed === 0) continue;
    const failureRate = step.failed / ran;
    if (failureRate < o.stepFailureRate) continue;
    const { errorCodes, retryable, validation, suggestion } = failureBreakdown(step);
    const definition = protocol?.steps.find((s) => s.id === id);
    const configuredRetry =
      definition && (definition.action === "prompt" || definition.action === "tool_api")
        ? (definition.retry ??
          (definition.action === "tool_api"
            ? document?.tools.find((t) => t.id === definition.tool_api_id)?.retry
            : undefined))
        : undefined;
    const codes = errorCodes
      .filter((e) =>
        suggestion === "retry"
          ? e.class === "retryable"
          : suggestion === "validation"
            ? e.class === "validation"
            : true,
      )
      .map((e) => e.code)
      .join(", ");
    const head = `Step "${id}" fails in ${percent(failureRate)} of its runs (${step.failed} of ${ran})`;
    let message: string;
    if (suggestion === "retry") {
      message =
        configuredRetry && configuredRetry.attempts > 1
          ? `${head}, mostly with errors a retry can fix (${codes}), although it already tries ${configuredRetry.attempts} times: raise "attempts" or "backoff_ms", or its "timeout_ms".`
          : `${head}, mostly with errors a retry can fix (${codes}): add "retry": { "attempts": 3, "backoff_ms": 200 }.`;
    } else if (suggestion === "validation") {
      const reads = definition ? readsOf(definition, document) : [];
      const what = reads.length > 0 ? ` (it reads ${reads.map((r) => `{${r}}`).join(", ")})` : "";
      message = `${head}, mostly with errors a retry will not fix (${codes}): check its inputs before it runs${what}, for example with a condition step or a clearer input prompt.`;
    } else {
      message = `${head} (${codes}): look at its error messages in the execution history.`;
    }
    out.push({
      kind: "failing_step",
      protocol: aggregate.protocol,
      step: id,
      message,
      evidence: {
        suggestion,
        failures: step.failed,
        ran,
        failureRate: round(failureRate, 4),
        threshold: o.stepFailureRate,
        retryableFailures: retryable,
        validationFailures: validation,
        errorCodes: errorCodes.map(({ code, count }) => ({ code, count })),
        configuredAttempts: configuredRetry?.attempts ?? 1,
      },
    });
  }
  return out;
}

function slowSteps(aggregate: ProtocolAggregate, o: Required<RecommendationOptions>): Recommendation[] {
  const out: Recommendation[] = [];
  const runTime = aggregate.duration.sum;
  for (const [id, step] of aggregate.steps.view().entries) {
    if (step.action === "input") continue;
    const ran = step.succeeded + step.failed;
    if (ran < o.minStepRuns) continue;
    const p95 = step.latency.quantile(0.95) ?? 0;
    const share = runTime > 0 ? step.latency.sum / runTime : 0;
    const slowByP95 = p95 > o.slowStepP95Ms;
    const slowByShare = share >= o.slowStepShare;
    if (!slowByP95 && !slowByShare) continue;
    const reasons = [
      slowByP95 ? `its p95 latency is ${millis(p95)} (above ${millis(o.slowStepP95Ms)})` : undefined,
      slowByShare ? `it takes ${percent(share)} of all run time` : undefined,
    ].filter((r) => r !== undefined);
    const advice =
      step.action === "prompt"
        ? "use a faster model, a shorter prompt or a lower max_tokens"
        : step.action === "tool_api"
          ? "set a tighter timeout_ms, cache the tool's answer or call a faster endpoint"
          : "look at what it waits for";
    out.push({
      kind: "slow_step",
      protocol: aggregate.protocol,
      step: id,
      message: `Step "${id}" is slow: ${reasons.join(" and ")}; ${advice}.`,
      evidence: {
        ran,
        p50Ms: round(step.latency.quantile(0.5) ?? 0),
        p95Ms: round(p95),
        p95ThresholdMs: o.slowStepP95Ms,
        shareOfRunTime: round(share, 4),
        shareThreshold: o.slowStepShare,
        meanCompletionTokens:
          step.completionTokens > 0 && step.succeeded > 0
            ? round(step.completionTokens / step.succeeded)
            : null,
      },
    });
  }
  return out;
}

function branchesNeverTaken(
  aggregate: ProtocolAggregate,
  protocol: Protocol | undefined,
  o: Required<RecommendationOptions>,
): Recommendation[] {
  const out: Recommendation[] = [];
  const conditionIds = protocol
    ? protocol.steps.filter((s) => s.action === "condition").map((s) => s.id)
    : [...aggregate.steps.keys()].filter((id) => aggregate.steps.peek(id)?.action === "condition");
  for (const id of conditionIds) {
    const step = aggregate.steps.peek(id);
    if (!step) continue;
    const evaluated = step.thenTaken + step.elseTaken;
    if (evaluated < o.minRuns || (step.thenTaken > 0 && step.elseTaken > 0)) continue;
    const never = step.thenTaken === 0 ? "then" : "else";
    const target = protocol ? branchTarget(protocol, id, never) : undefined;
    const guard = protocol && typeof target === "string" ? guardKind(protocol, id, target) : null;
    const leadsTo =
      target === undefined
        ? ""
        : target === null
          ? " (ending the run)"
          : ` (${guard === "goes_back" ? "back " : ""}to step "${target}")`;
    const finding = `Condition "${id}" went the ${never === "then" ? "else" : "then"} way in all ${evaluated} runs; its ${never} way${leadsTo} was never taken`;
    // 0 of n seen: the rate is below 1 − 0.05^(1/n) (about 3/n) with 95 % confidence.
    const upperBoundRate = 1 - 0.05 ** (1 / evaluated);
    out.push({
      kind: "branch_never_taken",
      protocol: aggregate.protocol,
      step: id,
      message: guard
        ? `${finding}: it looks like a guard (that way ${guard === "asks_again" ? "asks again" : "goes back"}), and a case none of ${evaluated} runs had may still come in up to ${percent(upperBoundRate)} of runs (95% bound): keep it unless the case cannot happen.`
        : `${finding}: check the condition, or remove the dead branch.`,
      evidence: {
        evaluated,
        thenTaken: step.thenTaken,
        elseTaken: step.elseTaken,
        neverTaken: never,
        target: target ?? null,
        guard,
        upperBoundRate: round(upperBoundRate, 4),
      },
    });
  }
  return out;
}

/**
 * Whether a condition's way to `target` guards input: it asks again (an `input` step) or goes
 * back (to the condition or a step before it, as a loop that asks again does).
 */
function guardKind(protocol: Protocol, id: string, target: string): "asks_again" | "goes_back" | null {
  const at = protocol.steps.findIndex((s) => s.id === id);
  const to = protocol.steps.findIndex((s) => s.id === target);
  if (to < 0) return null;
  if (protocol.steps[to]?.action === "input") return "asks_again";
  return to <= at ? "goes_back" : null;
}

/** Where a condition's way leads: a step id, or null when it ends the run. */
function branchTarget(protocol: Protocol, id: string, way: "then" | "else"): string | null {
  const index = protocol.steps.findIndex((s) => s.id === id);
  const step = protocol.steps[index];
  if (step?.action !== "condition") return null;
  const conditions = step.conditions;
  if (way === "else") {
    const fallback = Array.isArray(conditions) ? undefined : conditions.default_next_step_id;
    return fallback ?? step.else_step ?? null;
  }
  return followingStepId(protocol, index) ?? null;
}

function outputVariableOf(step: Step): string | undefined {
  if (step.action === "prompt") return step.output ?? `prompt_response_${step.id}`;
  if (step.action === "tool_api") return step.output ?? `${step.id}_result`;
  if (step.action === "input") return step.variable;
  return undefined;
}

/** The root variables a step's templates read. */
function readsOf(step: Step, document: MovaDocument | undefined): string[] {
  const templates: string[] = [];
  if (step.action === "prompt") {
    templates.push(step.prompt);
    if (step.system) templates.push(step.system);
  } else if (step.action === "input") templates.push(step.prompt);
  else if (step.action === "tool_api") {
    const tool = document?.tools.find((t) => t.id === step.tool_api_id);
    if (tool) {
      templates.push(tool.endpoint, ...Object.values(tool.headers), JSON.stringify(tool.parameters));
      const auth = tool.authentication;
      for (const value of [auth.token, auth.key, auth.username, auth.password, auth.header])
        if (value) templates.push(value);
    }
  } else if (step.action === "end" && step.response_template) templates.push(step.response_template);
  for (const condition of allRules(step.conditions)) {
    const compiled = condition.variable === undefined ? undefined : compileOperand(condition.variable);
    if (compiled?.ok) for (const path of operandPaths(compiled.operand)) templates.push(`{${path}}`);
  }
  const roots = new Set<string>();
  for (const template of templates)
    for (const path of placeholdersOf(template)) roots.add(path.split(".")[0]!);
  return [...roots];
}

function parallelOpportunities(
  aggregate: ProtocolAggregate,
  protocol: Protocol,
  document: MovaDocument,
): Recommendation[] {
  const steps = protocol.steps;
  const successorOf = (index: number): string | undefined => {
    const step = steps[index]!;
    if (step.action === "end") return undefined;
    return followingStepId(protocol, index);
  };
  const referenced = new Map<string, number>();
  const refer = (id: string | undefined) => {
    if (id !== undefined) referenced.set(id, (referenced.get(id) ?? 0) + 1);
  };
  refer(protocol.start ?? steps[0]?.id);
  const parallelBranches = new Set<string>();
  steps.forEach((step, index) => {
    refer(successorOf(index));
    if (step.action === "condition") {
      refer(step.else_step);
      for (const target of conditionTargets(step.conditions)) refer(target);
    }
    if (step.on_error !== undefined) refer(step.on_error);
    if (step.action === "parallel") for (const branch of step.steps) parallelBranches.add(branch);
  });
  const candidate = (step: Step | undefined): step is Step =>
    step !== undefined &&
    (step.action === "prompt" || step.action === "tool_api") &&
    !parallelBranches.has(step.id) &&
    !hasConditions(step.conditions);

  const indexOf = new Map(steps.map((s, i) => [s.id, i]));
  const grouped = new Set<string>();
  const out: Recommendation[] = [];
  for (let i = 0; i < steps.length; i++) {
    const first = steps[i];
    if (!candidate(first) || grouped.has(first.id)) continue;
    const group: Step[] = [first];
    const outputs = new Set([outputVariableOf(first)!]);
    const reads = new Set(readsOf(first, document));
    let index = i;
    for (;;) {
      const nextId = successorOf(index);
      const nextIndex = nextId === undefined ? undefined : indexOf.get(nextId);
      const next = nextIndex === undefined ? undefined : steps[nextIndex];
      if (!candidate(next) || grouped.has(next.id) || group.includes(next) || referenced.get(next.id) !== 1)
        break;
      if (nextId === (protocol.start ?? steps[0]?.id)) break;
      const nextReads = readsOf(next, document);
      const nextOutput = outputVariableOf(next)!;
      if (nextReads.some((r) => outputs.has(r)) || reads.has(nextOutput)) break;
      group.push(next);
      outputs.add(nextOutput);
      for (const r of nextReads) reads.add(r);
      index = nextIndex!;
    }
    if (group.length < 2) continue;
    for (const step of group) grouped.add(step.id);
    const figures = group.map((step) => {
      const stats = aggregate.steps.peek(step.id);
      const median = stats?.latency.quantile(0.5);
      return {
        step: step.id,
        runs: stats ? stats.succeeded + stats.failed : 0,
        medianMs: median === undefined ? null : round(median),
      };
    });
    const measured = figures.every((f) => f.medianMs !== null && f.runs > 0);
    const medians = figures.map((f) => f.medianMs ?? 0);
    const savedPerRun = measured ? round(medians.reduce((a, b) => a + b, 0) - Math.max(...medians)) : null;
    const runs = measured ? Math.min(...figures.map((f) => f.runs)) : 0;
    const savedTotal = savedPerRun === null ? null : round(savedPerRun * runs);
    const ids = group.map((s) => s.id);
    const names = ids.map((id) => `"${id}"`).join(ids.length === 2 ? " and " : ", ");
    const saving =
      savedPerRun === null
        ? " (no runs of them yet to estimate the time saved)"
        : ` to save about ${millis(savedPerRun)} per run (${millis(savedTotal!)} over ${runs} runs)`;
    out.push({
      kind: "parallelize",
      protocol: aggregate.protocol,
      step: ids[0]!,
      message: `Steps ${names} run one after another but do not read each other's outputs: run them as one parallel step { "action": "parallel", "steps": ${JSON.stringify(ids)} }${saving}.`,
      evidence: { steps: figures, savedMsPerRun: savedPerRun, runs, savedMsTotal: savedTotal },
    });
  }
  return out;
}

export function recommend(
  aggregate: ProtocolAggregate,
  document?: MovaDocument,
  options: RecommendationOptions = {},
): Recommendation[] {
  const o = { ...DEFAULTS, ...options };
  const protocol = document?.protocols.find((p) => p.name === aggregate.protocol);
  return [
    ...lowSuccessRate(aggregate, o),
    ...failingSteps(aggregate, protocol, document, o),
    ...slowSteps(aggregate, o),
    ...branchesNeverTaken(aggregate, protocol, o),
    ...(protocol && document ? parallelOpportunities(aggregate, protocol, document) : []),
  ];
}
