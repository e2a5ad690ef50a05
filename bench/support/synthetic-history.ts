/**
 * A synthetic execution history, generated lazily and deterministically from a seed (no
 * Math.random, no clock): records of several tenants, documents and protocols, each with
 * exactly eight step records, whatever the run's outcome.
 *
 * The protocols. Every protocol exists in four document versions (`documentVersion` 1–4) of
 * one shape, as a MOVA document would write it:
 *
 *   greet (prompt) → classify (prompt) → route (condition: then fetch_data, else ask_details)
 *   fetch_data (tool_api) | ask_details (input) → Y → compose (prompt)
 *   → review (condition: then notify, else T) → notify (tool_api; the last step: the run
 *   completes by falling off the end of the list)
 *
 * where Y, the fifth step, and T, the step the `review` loop goes back to when the reply does
 * not pass, depend on the version:
 *
 *   version 1: Y enrich (tool_api),  T route     (route again: may ask the user again)
 *   version 2: Y draft (prompt),     T compose   (rewrite the reply)
 *   version 3: Y enrich (tool_api),  T enrich    (enrich again)
 *   version 4: Y draft (prompt),     T classify  (classify again)
 *
 * `enrich` has a guard that fails one time in ten (a `skipped` record, attempts 0).
 *
 * Prompt steps name their model and its token usage (200–999 tokens in, 20–319 out), and a
 * completed run met its protocol's success criteria 85 % of the time (`outcome`), so the
 * analysis counts versions, quality and cost as it does in production.
 *
 * The runs, each a walk of eight step records through its version's graph, recorded as the
 * engine records it (lib/engine/engine.ts: a failed step ends the run; a deadline stops the
 * step in flight, whose record fails with `deadline`, or stops the run between two steps;
 * an `input` step has a record only once answered, while the run waits it is the last
 * entry of `path` and has no record):
 *
 * - completed (82 %): the main line, review passed: greet, classify, route, fetch_data or
 *   ask_details (70 : 30), Y, compose, review, notify.
 * - failed (12 %): either the main line with `notify` failing (all of version 1's failures,
 *   half of the others'), or the review loop with T failing when re-entered: greet,
 *   classify, route, X, Y, compose, review (else), T. The error suits the step (LLM errors
 *   on prompts, HTTP statuses, time-outs and network errors on tools); a retryable error
 *   was tried 1–3 times, an HTTP 404 once. The run's error is the engine's
 *   `step "<id>" failed: …`.
 * - timed out (4 %): the deadline passes during `notify` on the main line, or during the
 *   re-entered T, or right after it (between steps: every record succeeded; version 1 after
 *   re-routing to fetch_data).
 * - waiting for input (2 %, version 1 only): the review loop re-routed to `ask_details`,
 *   where the run waits: eight records, nine path entries, `analysis: "waiting"`.
 *
 * Prompts (English and Ukrainian, rendered with a city and a topic), tools, intents,
 * triggers and durations vary as before: prompts 300–4300 ms, tools 40–940 ms, conditions
 * and answered inputs 0–2 ms, with 5 % of the other calls needing a second attempt.
 */
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";

/** mulberry32: a small, fast, seedable PRNG (the figures must not depend on Math.random). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const STEPS_PER_EXECUTION = 8;

const TENANTS = ["acme", "globex", "initech"];
const DOCUMENTS = ["support", "weather", "orders"];
const PROTOCOLS = ["triage", "lookup", "checkout", "feedback"];
const INTENTS = ["weather_inquiry", "order_status", "complaint", "greeting", undefined];
const TOOLS = ["weather_api", "orders_api", "crm_api", "geo_api"];
const CITIES = ["Kyiv", "Lviv", "Odesa", "Berlin", "Paris", "Madrid", "Oslo", "Rome", "Vienna", "Prague"];
const TOPICS = ["refund", "delivery", "invoice", "password", "upgrade", "warranty", "delay", "discount"];
const PROMPTS = [
  (city: string, topic: string) => `Summarise the weather in ${city} for a traveller asking about ${topic}`,
  (city: string, topic: string) =>
    `Classify the customer's message about ${topic} from ${city} as urgent or routine`,
  (city: string, topic: string) =>
    `Write a short, polite reply explaining the ${topic} policy to a customer in ${city}`,
  (city: string, topic: string) => `Підсумуй погоду в місті ${city} і дай пораду щодо ${topic}`,
  (city: string, topic: string) =>
    `Extract the order number and the ${topic} reason; answer in JSON for ${city}`,
];

interface Failure {
  code: string;
  message: string;
  httpStatus?: number;
  retryable: boolean;
}
const TOOL_ERRORS: Failure[] = [
  { code: "tool_http_status", httpStatus: 503, message: "the tool answered HTTP 503", retryable: true },
  { code: "tool_http_status", httpStatus: 404, message: "the tool answered HTTP 404", retryable: false },
  { code: "timeout", message: "no complete answer within 5000 ms", retryable: true },
  { code: "tool_network", message: "the connection was reset", retryable: true },
];
const LLM_ERRORS: Failure[] = [
  { code: "llm_rate_limited", message: "the LLM rate limit was hit", retryable: true },
  { code: "llm_bad_response", message: "the LLM response has no text content", retryable: false },
  { code: "llm_timeout", message: "the LLM did not answer within 30000 ms", retryable: true },
];
const DEADLINE = { code: "deadline", message: "the run's deadline passed" };

const DAY_MS = 86_400_000;
const dayPrefixes = new Map<number, string>();
const pad2 = (value: number) => (value < 10 ? `0${value}` : `${value}`);
/** "HH:mm:" of each minute of a day, "ss" of each second and ".sssZ" of each millisecond, made once (small enough to stay in cache). */
const MINUTES = Array.from(
  { length: 1440 },
  (_, minute) => `${pad2(Math.floor(minute / 60))}:${pad2(minute % 60)}:`,
);
const SECONDS = Array.from({ length: 60 }, (_, second) => pad2(second));
const MILLIS = Array.from({ length: 1000 }, (_, ms) => `.${String(ms).padStart(3, "0")}Z`);
let lastDay = Number.NaN;
let lastPrefix = "";

/**
 * `new Date(ms).toISOString()` for the years 1970–9999, several times faster (four pieces
 * joined): the generator must not dominate the benchmark.
 */
export function isoOf(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  if (day !== lastDay) {
    let prefix = dayPrefixes.get(day);
    if (prefix === undefined) {
      prefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
      dayPrefixes.set(day, prefix);
    }
    lastDay = day;
    lastPrefix = prefix;
  }
  const rest = ms - day * DAY_MS;
  const second = Math.floor(rest / 1000);
  const minute = Math.floor(second / 60);
  return lastPrefix + MINUTES[minute]! + SECONDS[second - minute * 60]! + MILLIS[rest - second * 1000]!;
}

/**
 * Every rendered prompt, each after a space, made once as a flat string. A record's prompt is
 * `.slice(1)` of one: a fresh string whose hash the analysis computes, as it would for a
 * record read from JSON, without a template's pieces to flatten first.
 */
const RENDERED = PROMPTS.map((render) =>
  CITIES.map((city) => TOPICS.map((topic) => flat(` ${render(city, topic)}`))),
);
function flat(text: string): string {
  // A string read from JSON is flat; one joined from a template is a tree until first read.
  return JSON.parse(JSON.stringify(text)) as string;
}

type Action = "prompt" | "tool_api" | "condition" | "input";
interface PlannedStep {
  id: string;
  action: Action;
  /** Conditions: the branch taken. */
  branch?: "then" | "else";
  /** `enrich`: its guard may fail (the record is then `skipped`). */
  guarded: boolean;
}
/** How a walk of eight records ends. */
type Ending =
  /** Every record succeeded (or was skipped) and the run completed. */
  | "completed"
  /** The eighth record failed: the run failed. */
  | "failed"
  /** The deadline passed during the eighth record. */
  | "deadline_during"
  /** The deadline passed after the eighth record. */
  | "deadline_after"
  /** The run waits on `ask_details`, after the eighth record. */
  | "waiting";

const step = (id: string, action: Action, branch?: "then" | "else"): PlannedStep =>
  branch === undefined ? { id, action, guarded: id === "enrich" } : { id, action, branch, guarded: false };

const VERSIONS = [
  { version: 1, fifth: step("enrich", "tool_api"), loopTo: "route" },
  { version: 2, fifth: step("draft", "prompt"), loopTo: "compose" },
  { version: 3, fifth: step("enrich", "tool_api"), loopTo: "enrich" },
  { version: 4, fifth: step("draft", "prompt"), loopTo: "classify" },
] as const;

/** The first seven records of a walk: the main line up to `review`. */
function firstSeven(version: (typeof VERSIONS)[number], fetch: boolean, review: "then" | "else") {
  return [
    step("greet", "prompt"),
    step("classify", "prompt"),
    step("route", "condition", fetch ? "then" : "else"),
    fetch ? step("fetch_data", "tool_api") : step("ask_details", "input"),
    version.fifth,
    step("compose", "prompt"),
    step("review", "condition", review),
  ];
}

/** The eighth record when the review loop goes back to `loopTo`. */
function reentered(loopTo: string, fifth: PlannedStep, routeBranch: "then" | "else"): PlannedStep {
  if (loopTo === "route") return step("route", "condition", routeBranch);
  if (loopTo === fifth.id) return fifth;
  return step(loopTo, "prompt");
}

interface Walk {
  steps: PlannedStep[];
  ending: Ending;
  version: number;
  /** `path` when it is more than the records' ids (a waiting run). */
  waitingOn?: string;
}

/** Every walk, built once: [version index][fetch ? 1 : 0] → the walks by kind. */
const WALKS = VERSIONS.map((version) =>
  [false, true].map((fetch) => {
    const main = [...firstSeven(version, fetch, "then"), step("notify", "tool_api")];
    const loop = (routeBranch: "then" | "else") => [
      ...firstSeven(version, fetch, "else"),
      reentered(version.loopTo, version.fifth, routeBranch),
    ];
    const walk = (steps: PlannedStep[], ending: Ending, waitingOn?: string): Walk =>
      waitingOn === undefined
        ? { steps, ending, version: version.version }
        : { steps, ending, version: version.version, waitingOn };
    const reroutes = version.loopTo === "route";
    return {
      completed: walk(main, "completed"),
      failedAtNotify: walk(main, "failed"),
      deadlineInNotify: walk(main, "deadline_during"),
      /** Version 1 re-enters a condition, which neither fails nor is stopped during. */
      failedInLoop: reroutes ? undefined : walk(loop("then"), "failed"),
      deadlineInLoop: reroutes ? undefined : walk(loop("then"), "deadline_during"),
      deadlineAfterLoop: walk(loop("then"), "deadline_after"),
      waiting: reroutes ? walk(loop("else"), "waiting", "ask_details") : undefined,
    };
  }),
);

export interface HistoryOptions {
  count: number;
  seed?: number;
  /** Records start within the `days` before `endMs`. */
  endMs?: number;
  days?: number;
}

/** Yields `count` execution records, one at a time (nothing is kept). */
export function* syntheticHistory(options: HistoryOptions): Generator<ExecutionRecord> {
  const random = seededRandom(options.seed ?? 20_251_123);
  const endMs = options.endMs ?? Date.parse("2025-11-20T00:00:00.000Z");
  const spanMs = (options.days ?? 20) * 86_400_000;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  for (let index = 0; index < options.count; index += 1) {
    const tenant = pick(TENANTS);
    const document = pick(DOCUMENTS);
    const protocol = pick(PROTOCOLS);
    const fetch = random() < 0.7;
    const roll = random();
    const status: ExecutionRecord["status"] =
      roll < 0.82 ? "completed" : roll < 0.94 ? "failed" : roll < 0.98 ? "timed_out" : "waiting_input";
    // Only version 1 re-routes, so only it has waiting runs.
    const versionAt = status === "waiting_input" ? 0 : Math.floor(random() * VERSIONS.length);
    const walks = WALKS[versionAt]![fetch ? 1 : 0]!;
    const split = random();
    const walk: Walk =
      status === "completed"
        ? walks.completed
        : status === "waiting_input"
          ? walks.waiting!
          : status === "failed"
            ? ((split < 0.5 ? walks.failedInLoop : undefined) ?? walks.failedAtNotify)
            : split < 1 / 3
              ? walks.deadlineInNotify
              : split < 2 / 3
                ? (walks.deadlineInLoop ?? walks.deadlineAfterLoop)
                : walks.deadlineAfterLoop;
    const started = endMs - Math.floor(random() * spanMs);
    const city = Math.floor(random() * CITIES.length);
    const topic = Math.floor(random() * TOPICS.length);
    let at = started;
    const planned = walk.steps;
    const last = planned.length - 1;
    const steps: ExecutionRecord["steps"] = [];
    const path: string[] = [];
    let runError: ExecutionRecord["error"];
    for (let position = 0; position <= last; position += 1) {
      const plannedStep = planned[position]!;
      const action = plannedStep.action;
      const ends = position === last;
      const fails = ends && walk.ending === "failed";
      const stopped = ends && walk.ending === "deadline_during";
      const skipped = plannedStep.guarded && !fails && !stopped && random() < 0.1;
      const durationMs = skipped
        ? 0
        : action === "prompt"
          ? 300 + Math.floor(random() * random() * 4000)
          : action === "tool_api"
            ? 40 + Math.floor(random() * random() * 900)
            : Math.floor(random() * 3);
      const failure = fails ? pick(action === "prompt" ? LLM_ERRORS : TOOL_ERRORS) : undefined;
      const attempts = skipped
        ? 0
        : failure !== undefined
          ? failure.retryable
            ? 1 + Math.floor(random() * 3)
            : 1
          : stopped
            ? 1
            : action !== "condition" && action !== "input" && random() < 0.05
              ? 2
              : 1;
      path.push(plannedStep.id);
      const record: ExecutionRecord["steps"][number] = {
        id: plannedStep.id,
        action,
        status: skipped ? "skipped" : fails || stopped ? "failed" : "succeeded",
        attempts,
        startedAt: isoOf(at),
        durationMs,
      };
      if (action === "prompt") {
        record.prompt = RENDERED[Math.floor(random() * PROMPTS.length)]![city]![topic]!.slice(1);
        record.model = "gpt-4o-mini";
        // Tokens as a model reports them, so the analysis counts tokens and cost too.
        const promptTokens = 200 + Math.floor(random() * 800);
        const completionTokens = 20 + Math.floor(random() * 300);
        record.usage = { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens };
      } else if (action === "tool_api" && !skipped) {
        // A skipped step has no tool call (the engine's skipped record has no toolId).
        record.toolId = plannedStep.id === "notify" ? "crm_api" : pick(TOOLS);
        if (!fails && !stopped) record.httpStatus = 200;
      } else if (plannedStep.branch !== undefined) record.branch = plannedStep.branch;
      if (failure !== undefined) {
        record.error = { code: failure.code, message: failure.message };
        if (failure.httpStatus !== undefined) record.httpStatus = failure.httpStatus;
        runError = { code: failure.code, message: `step "${plannedStep.id}" failed: ${failure.message}` };
      } else if (stopped) record.error = { ...DEADLINE };
      steps.push(record);
      at += durationMs;
    }
    if (walk.waitingOn !== undefined) path.push(walk.waitingOn);
    if (status === "timed_out") runError = { ...DEADLINE };
    const intent = pick(INTENTS);
    const execution: ExecutionRecord = {
      tenant,
      executionId: `exe-${index.toString(36)}`,
      document,
      documentVersion: walk.version,
      protocol,
      trigger: random() < 0.6 ? "session" : "api",
      status,
      startedAt: isoOf(started),
      finishedAt: isoOf(at),
      durationMs: at - started,
      path,
      steps,
      unresolved: [],
      offline: false,
      analysis: status === "waiting_input" ? "waiting" : "published",
    };
    if (intent !== undefined) execution.intent = intent;
    // Quality: a completed run met its protocol's success criteria, or not.
    if (status === "completed") execution.outcome = random() < 0.85 ? "succeeded" : "unsuccessful";
    if (runError !== undefined) execution.error = runError;
    yield execution;
  }
}
