/**
 * A synthetic execution history, generated lazily and deterministically from a seed: records
 * of several tenants, documents and protocols, eight steps each, with varied paths (two
 * branch points), statuses (completed, failed at a step with an error code, timed out,
 * waiting for input), tools, prompts in English and Ukrainian, intents and durations.
 */
import type { ExecutionRecord } from "../../lib/history/execution-record.ts";

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
const ERRORS: Array<{ code: string; httpStatus?: number; message: string }> = [
  { code: "tool_http_status", httpStatus: 503, message: "the tool answered HTTP 503" },
  { code: "tool_http_status", httpStatus: 404, message: "the tool answered HTTP 404" },
  { code: "tool_timeout", message: "no complete answer within 5000 ms" },
  { code: "llm_rate_limited", message: "the LLM rate limit was hit" },
  { code: "llm_bad_response", message: "the LLM response has no text content" },
];

const DAY_MS = 86_400_000;
const dayPrefixes = new Map<number, string>();
const pad2 = (value: number) => (value < 10 ? `0${value}` : `${value}`);

/** `new Date(ms).toISOString()`, several times faster: the generator must not dominate the benchmark. */
export function isoOf(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  let prefix = dayPrefixes.get(day);
  if (prefix === undefined) {
    prefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    dayPrefixes.set(day, prefix);
  }
  let rest = ms - day * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  return `${prefix}${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${millis < 10 ? "00" : millis < 100 ? "0" : ""}${millis}Z`;
}

type Action = "prompt" | "tool_api" | "condition" | "input" | "end";

/** Eight steps in all: two branch points choose between two steps each. */
function planOf(choice1: boolean, choice2: boolean): Array<{ id: string; action: Action }> {
  return [
    { id: "greet", action: "prompt" },
    { id: "classify", action: "prompt" },
    { id: "route", action: "condition" },
    choice1 ? { id: "fetch_data", action: "tool_api" } : { id: "ask_details", action: "input" },
    choice2 ? { id: "enrich", action: "tool_api" } : { id: "draft", action: "prompt" },
    { id: "compose", action: "prompt" },
    { id: "notify", action: "tool_api" },
    { id: "done", action: "end" },
  ];
}

// The four plans and where they may fail, built once: the generator must cost little next to the analysis.
const PLANS = [planOf(true, true), planOf(true, false), planOf(false, true), planOf(false, false)].map(
  (plan) => ({
    plan,
    callable: plan.flatMap((step, at) =>
      step.action === "prompt" || step.action === "tool_api" ? [at] : [],
    ),
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
    const { plan, callable } = PLANS[(random() < 0.7 ? 0 : 2) + (random() < 0.5 ? 0 : 1)]!;
    const roll = random();
    const status: ExecutionRecord["status"] =
      roll < 0.82 ? "completed" : roll < 0.94 ? "failed" : roll < 0.98 ? "timed_out" : "waiting_input";
    // A failed run fails at a prompt or tool step; the steps after it were never entered.
    const failAt = status === "failed" ? (callable[Math.floor(random() * callable.length)] as number) : -1;
    const lastAt =
      status === "timed_out"
        ? 3 + Math.floor(random() * 4)
        : status === "waiting_input"
          ? 3
          : STEPS_PER_EXECUTION - 1;
    const started = endMs - Math.floor(random() * spanMs);
    const city = pick(CITIES);
    const topic = pick(TOPICS);
    const error = pick(ERRORS);
    let at = started;
    const steps: ExecutionRecord["steps"] = [];
    const path: string[] = [];
    for (let position = 0; position < plan.length; position += 1) {
      const step = plan[position]!;
      const entered = failAt >= 0 ? position <= failAt : position <= lastAt;
      const guarded = step.id === "enrich" && random() < 0.1;
      const durationMs = !entered
        ? 0
        : step.action === "prompt"
          ? 300 + Math.floor(random() * random() * 4000)
          : step.action === "tool_api"
            ? 40 + Math.floor(random() * random() * 900)
            : Math.floor(random() * 3);
      const failed = position === failAt;
      const attempts =
        !entered || guarded ? 0 : failed ? 1 + Math.floor(random() * 3) : random() < 0.05 ? 2 : 1;
      if (!entered) break;
      path.push(step.id);
      const record: ExecutionRecord["steps"][number] = {
        id: step.id,
        action: step.action,
        status: guarded ? "skipped" : failed ? "failed" : "succeeded",
        attempts,
        startedAt: isoOf(at),
        durationMs: guarded ? 0 : durationMs,
      };
      if (step.action === "prompt") {
        record.prompt = pick(PROMPTS)(city, topic);
        record.model = "gpt-4o-mini";
      }
      if (step.action === "tool_api") {
        record.toolId = step.id === "notify" ? "crm_api" : pick(TOOLS);
        if (!failed && !guarded) record.httpStatus = 200;
      }
      if (step.action === "condition") record.branch = plan[3]?.id === "fetch_data" ? "then" : "else";
      if (failed) {
        record.error = { code: error.code, message: error.message };
        if (error.httpStatus !== undefined && step.action === "tool_api")
          record.httpStatus = error.httpStatus;
      }
      steps.push(record);
      at += durationMs;
    }
    const intent = pick(INTENTS);
    const execution: ExecutionRecord = {
      tenant,
      executionId: `exe-${index.toString(36)}`,
      document,
      documentVersion: 1 + Math.floor(random() * 3),
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
      analysis: "published",
    };
    if (intent !== undefined) execution.intent = intent;
    if (status === "failed") execution.error = { code: error.code, message: `step failed: ${error.message}` };
    if (status === "timed_out") execution.error = { code: "deadline", message: "the run's deadline passed" };
    yield execution;
  }
}
