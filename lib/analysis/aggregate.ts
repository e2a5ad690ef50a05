/**
 * The per-protocol aggregate: every count the statistics, patterns and recommendations are
 * computed from, for one tenant/document/protocol. Counts add and latency sketches merge
 * exactly, so aggregating batches and merging them in any order gives the same aggregate as
 * aggregating everything at once (exactly, while every map is under its cap; see
 * bounded-map.ts for the approximation beyond). The stored JSON is bounded by the caps
 * below: under 300 KB in the worst case (the DynamoDB item limit is 400 KB), a few KB usually.
 *
 * Definitions:
 * - a run is finished when its status is completed, failed or timed_out; `failed` counts
 *   failed and timed_out runs, `timedOut` the part of them that timed out;
 * - durations of runs are of finished runs; step and tool latencies are of steps that ran
 *   (not skipped);
 * - retries = attempts − 1, summed over the steps that ran;
 * - a failed run fails at its last failed step, else (a deadline) at the last step it entered;
 * - a long run's record is its summary (lib/core/record-size.ts): run figures are whole, step
 *   figures count the step records it holds (the first of the run's), and `failedStepId`
 *   names where it failed;
 * - a path is the run's step ids joined by " > ", cut at MAX_PATH_KEY_LENGTH characters
 *   (marked with " > …");
 * - prompt terms count prompt steps that ran (succeeded or failed), each term once per prompt;
 * - an aggregate with a `version` counts the runs of that document version only; one without
 *   is every version's (what merging the versions' aggregates gives);
 * - quality counts completed runs by outcome (`succeeded`, `unsuccessful`, `unknown`: no
 *   criteria, or a record from before outcomes were kept);
 * - tokens are the step records' `usage`, per step, per model (`(none)` when the record names
 *   none) and per finished run (sums of squares and products for the cost's variance: the
 *   price is applied when the figures are read, see cost.ts).
 */
import * as z from "zod";
import type { ExecutionRecord } from "../core/execution-record.ts";
import { BoundedMap, type BoundedMapJson, type BoundedMapSpec, type BoundedView } from "./bounded-map.ts";
import { MovaError } from "../errors.ts";
import { LatencySketch, type LatencySketchJson } from "./sketch.ts";
import { extractTerms, numberedTermList, termListEpoch, termsNumberOf } from "./terms.ts";
import { parseTimestamp } from "./time.ts";

export const AGGREGATE_CAPS = {
  steps: 40,
  errorCodesPerStep: 10,
  tools: 20,
  successfulPaths: 20,
  pathsTaken: 100,
  intents: 50,
  terms: 500,
  runErrorCodes: 20,
  models: 20,
} as const;
export const MAX_PATH_KEY_LENGTH = 200;
export const PATH_SEPARATOR = " > ";

interface Counter {
  n: number;
}
export interface StepAggregate {
  /** The step's action (the smallest name seen, should the id change action between versions). */
  action: string;
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  attempts: number;
  retries: number;
  /** Runs that failed at this step. */
  failedRuns: number;
  /** Condition steps: how often each way was taken. */
  thenTaken: number;
  elseTaken: number;
  latency: LatencySketch;
  /** Error code (with `:<http status>` when the step has one) → count. */
  errors: BoundedMap<Counter>;
  /** The model the step's records name (the smallest seen), "" when none. */
  model: string;
  promptTokens: number;
  completionTokens: number;
}
export interface ModelUsage {
  /** Step records with usage. */
  calls: number;
  promptTokens: number;
  completionTokens: number;
}
/** Completed runs by outcome. */
export interface QualityCounts {
  succeeded: number;
  unsuccessful: number;
  unknown: number;
}
/** Tokens per finished run: count, sums, sums of squares and of products (for a variance). */
export interface RunTokens {
  runs: number;
  prompt: number;
  completion: number;
  promptSq: number;
  completionSq: number;
  product: number;
}
interface ToolAggregate {
  calls: number;
  succeeded: number;
  failed: number;
  attempts: number;
  retries: number;
  latency: LatencySketch;
}
interface PathAggregate {
  count: number;
  duration: LatencySketch;
}
interface IntentAggregate {
  runs: number;
  completed: number;
  failed: number;
  timedOut: number;
  waitingInput: number;
}
interface TermAggregate {
  succeeded: number;
  failed: number;
}

export interface AggregateKey {
  tenant: string;
  document: string;
  protocol: string;
  /** The document version counted; absent: every version. */
  version?: number | undefined;
}

export interface ProtocolAggregate extends AggregateKey {
  executions: number;
  completed: number;
  /** failed + timed_out. */
  failed: number;
  timedOut: number;
  waitingInput: number;
  /** Durations of finished runs. */
  duration: LatencySketch;
  /** Epoch ms of the earliest start and the latest finish seen. */
  firstStartedAt: number | undefined;
  lastFinishedAt: number | undefined;
  steps: BoundedMap<StepAggregate>;
  tools: BoundedMap<ToolAggregate>;
  /** Paths of completed runs. */
  successfulPaths: BoundedMap<PathAggregate>;
  /** Paths of finished runs, whatever their outcome. */
  pathsTaken: BoundedMap<Counter>;
  intents: BoundedMap<IntentAggregate>;
  promptSteps: { succeeded: number; failed: number };
  terms: PromptTermTally;
  /** The run-level error code of failed runs → count. */
  runErrors: BoundedMap<Counter>;
  quality: QualityCounts;
  /** Model → tokens. */
  models: BoundedMap<ModelUsage>;
  runTokens: RunTokens;
}

const counterSpec = (cap: number): BoundedMapSpec<Counter> => ({
  cap,
  create: () => ({ n: 0 }),
  weight: (c) => c.n,
  mergeInto: (t, s) => {
    t.n += s.n;
  },
});

const errorsSpec = counterSpec(AGGREGATE_CAPS.errorCodesPerStep);

function mergeStep(target: StepAggregate, source: StepAggregate): void {
  if (target.action === "" || (source.action !== "" && source.action < target.action))
    target.action = source.action;
  target.total += source.total;
  target.succeeded += source.succeeded;
  target.failed += source.failed;
  target.skipped += source.skipped;
  target.attempts += source.attempts;
  target.retries += source.retries;
  target.failedRuns += source.failedRuns;
  target.thenTaken += source.thenTaken;
  target.elseTaken += source.elseTaken;
  target.latency.merge(source.latency);
  target.errors.mergeFrom(source.errors);
  if (target.model === "" || (source.model !== "" && source.model < target.model))
    target.model = source.model;
  target.promptTokens += source.promptTokens;
  target.completionTokens += source.completionTokens;
}

// The fields every record updates first: objects keep their fields in the order they were
// made with, and the analysis counts into thousands of them in turn (each cache line counts).
const stepSpec: BoundedMapSpec<StepAggregate> = {
  cap: AGGREGATE_CAPS.steps,
  create: () => ({
    action: "",
    total: 0,
    succeeded: 0,
    attempts: 0,
    latency: new LatencySketch(),
    thenTaken: 0,
    elseTaken: 0,
    retries: 0,
    failed: 0,
    skipped: 0,
    failedRuns: 0,
    errors: new BoundedMap(errorsSpec),
    model: "",
    promptTokens: 0,
    completionTokens: 0,
  }),
  weight: (s) => s.total + s.failedRuns,
  mergeInto: mergeStep,
};

const toolSpec: BoundedMapSpec<ToolAggregate> = {
  cap: AGGREGATE_CAPS.tools,
  create: () => ({
    calls: 0,
    succeeded: 0,
    attempts: 0,
    latency: new LatencySketch(),
    retries: 0,
    failed: 0,
  }),
  weight: (t) => t.calls,
  mergeInto: (t, s) => {
    t.calls += s.calls;
    t.succeeded += s.succeeded;
    t.failed += s.failed;
    t.attempts += s.attempts;
    t.retries += s.retries;
    t.latency.merge(s.latency);
  },
};

const pathSpec: BoundedMapSpec<PathAggregate> = {
  cap: AGGREGATE_CAPS.successfulPaths,
  create: () => ({ count: 0, duration: new LatencySketch() }),
  weight: (p) => p.count,
  mergeInto: (t, s) => {
    t.count += s.count;
    t.duration.merge(s.duration);
  },
};

const intentSpec: BoundedMapSpec<IntentAggregate> = {
  cap: AGGREGATE_CAPS.intents,
  create: () => ({ runs: 0, completed: 0, failed: 0, timedOut: 0, waitingInput: 0 }),
  weight: (i) => i.runs,
  mergeInto: (t, s) => {
    t.runs += s.runs;
    t.completed += s.completed;
    t.failed += s.failed;
    t.timedOut += s.timedOut;
    t.waitingInput += s.waitingInput;
  },
};

const termSpec: BoundedMapSpec<TermAggregate> = {
  cap: AGGREGATE_CAPS.terms,
  create: () => ({ succeeded: 0, failed: 0 }),
  weight: (t) => t.succeeded + t.failed,
  mergeInto: (t, s) => {
    t.succeeded += s.succeeded;
    t.failed += s.failed;
  },
};

/**
 * Prompt term counts, buffered: a record's prompt is counted against its term list (the
 * list `termsOf` shares between equal prompts) and spread over the terms only when the
 * counts are read, so a history of millions of repetitive prompts costs one count per prompt
 * instead of one map update per word. Every read of the tally settles the buffer first.
 *
 * The buffer counts by the list's number (terms.ts), in an array: the analysis counts into
 * hundreds of tallies in turn, and a map with an object per list (tens of KB per tally)
 * cost several cache misses per prompt where the array costs one. Settling adds the lists'
 * counts in the order the lists were first seen since the last settling, as a map by list
 * would: when the numbering starts over, what is pending is settled then (those lists are
 * never seen again), and the limit of pending lists still counts them.
 */
class PromptTermTally extends BoundedMap<TermAggregate> {
  /** Each list counted since the last settling, first seen first, and its number (−1: too long to be numbered). */
  private pendingLists: Array<readonly string[]> = [];
  private pendingNumbers: number[] = [];
  /** The epoch of the pending numbers (terms.ts). */
  private pendingEpoch = -1;
  /** Succeeded and failed prompts at 2 × number and 2 × number + 1 (undefined: not seen). */
  private pendingCounts: number[] = [];
  /** The counts of the lists without a number, by list. */
  private pendingUnnumbered = new Map<readonly string[], TermAggregate>();
  /** Lists seen since the last settling that was not merely a new epoch. */
  private pendingSeen = 0;

  constructor() {
    super(termSpec);
  }

  countPrompt(prompt: string, succeeded: boolean): void {
    const number = termsNumberOf(prompt);
    if (number < 0) {
      this.countUnnumbered(extractTerms(prompt), succeeded);
      return;
    }
    const epoch = termListEpoch();
    if (epoch !== this.pendingEpoch) {
      this.spread();
      this.pendingEpoch = epoch;
    }
    const at = number * 2;
    if (this.pendingCounts[at] === undefined) {
      if (this.pendingSeen >= PENDING_PROMPT_LIMIT) this.settle();
      this.pendingSeen += 1;
      this.pendingLists.push(numberedTermList(number));
      this.pendingNumbers.push(number);
      this.pendingCounts[at] = 0;
      this.pendingCounts[at + 1] = 0;
    }
    this.pendingCounts[succeeded ? at : at + 1]! += 1;
  }

  private countUnnumbered(terms: readonly string[], succeeded: boolean): void {
    let counts = this.pendingUnnumbered.get(terms);
    if (counts === undefined) {
      if (this.pendingSeen >= PENDING_PROMPT_LIMIT) this.settle();
      this.pendingSeen += 1;
      this.pendingLists.push(terms);
      this.pendingNumbers.push(-1);
      counts = { succeeded: 0, failed: 0 };
      this.pendingUnnumbered.set(terms, counts);
    }
    if (succeeded) counts.succeeded += 1;
    else counts.failed += 1;
  }

  override get size(): number {
    this.settle();
    return super.size;
  }
  override get(key: string): TermAggregate {
    this.settle();
    return super.get(key);
  }
  override peek(key: string): TermAggregate | undefined {
    this.settle();
    return super.peek(key);
  }
  override keys(): IterableIterator<string> {
    this.settle();
    return super.keys();
  }
  override mergeFrom(source: BoundedMap<TermAggregate>): void {
    this.settle();
    if (source instanceof PromptTermTally) source.settle();
    super.mergeFrom(source);
  }
  override view(cap?: number): BoundedView<TermAggregate> {
    this.settle();
    return super.view(cap);
  }
  override toJSON<J>(encode: (value: TermAggregate) => J): BoundedMapJson<J> {
    this.settle();
    return super.toJSON(encode);
  }

  private settle(): void {
    this.spread();
    this.pendingSeen = 0;
  }

  /** Adds the pending counts to their terms, in the order their lists were first seen. */
  private spread(): void {
    const lists = this.pendingLists;
    if (lists.length === 0) return;
    const numbers = this.pendingNumbers;
    const counts = this.pendingCounts;
    const unnumbered = this.pendingUnnumbered;
    this.pendingLists = [];
    this.pendingNumbers = [];
    this.pendingCounts = [];
    this.pendingUnnumbered = new Map();
    for (let i = 0; i < lists.length; i++) {
      const terms = lists[i]!;
      const number = numbers[i]!;
      const pending = number < 0 ? unnumbered.get(terms)! : undefined;
      const succeeded = pending === undefined ? counts[number * 2]! : pending.succeeded;
      const failed = pending === undefined ? counts[number * 2 + 1]! : pending.failed;
      for (const term of terms) {
        const entry = super.get(term);
        entry.succeeded += succeeded;
        entry.failed += failed;
      }
    }
  }
}
const PENDING_PROMPT_LIMIT = 16_384;

const modelSpec: BoundedMapSpec<ModelUsage> = {
  cap: AGGREGATE_CAPS.models,
  create: () => ({ calls: 0, promptTokens: 0, completionTokens: 0 }),
  weight: (m) => m.promptTokens + m.completionTokens,
  mergeInto: (t, s) => {
    t.calls += s.calls;
    t.promptTokens += s.promptTokens;
    t.completionTokens += s.completionTokens;
  },
};
export const NO_MODEL = "(none)";

const emptyRunTokens = (): RunTokens => ({
  runs: 0,
  prompt: 0,
  completion: 0,
  promptSq: 0,
  completionSq: 0,
  product: 0,
});

const pathsTakenSpec = counterSpec(AGGREGATE_CAPS.pathsTaken);
const runErrorsSpec = counterSpec(AGGREGATE_CAPS.runErrorCodes);

export function createAggregate(key: AggregateKey): ProtocolAggregate {
  return {
    tenant: key.tenant,
    document: key.document,
    protocol: key.protocol,
    version: key.version,
    executions: 0,
    completed: 0,
    failed: 0,
    timedOut: 0,
    waitingInput: 0,
    duration: new LatencySketch(),
    firstStartedAt: undefined,
    lastFinishedAt: undefined,
    steps: new BoundedMap(stepSpec),
    tools: new BoundedMap(toolSpec),
    successfulPaths: new BoundedMap(pathSpec),
    pathsTaken: new BoundedMap(pathsTakenSpec),
    intents: new BoundedMap(intentSpec),
    promptSteps: { succeeded: 0, failed: 0 },
    terms: new PromptTermTally(),
    runErrors: new BoundedMap(runErrorsSpec),
    quality: { succeeded: 0, unsuccessful: 0, unknown: 0 },
    models: new BoundedMap(modelSpec),
    runTokens: emptyRunTokens(),
  };
}

/** The map key of a tenant/document/protocol[/version] (NUL cannot appear in any of them usefully). */
export function aggregateKeyOf(key: AggregateKey): string {
  const base = `${key.tenant}\u0000${key.document}\u0000${key.protocol}`;
  return key.version === undefined ? base : `${base}\u0000${key.version}`;
}

/** The key of the aggregate of a record's document version. */
export function recordKeyOf(
  record: Pick<ExecutionRecord, "tenant" | "document" | "protocol" | "documentVersion">,
): AggregateKey {
  return {
    tenant: record.tenant,
    document: record.document,
    protocol: record.protocol,
    version: record.documentVersion,
  };
}

/** Same tenant, document and protocol (whatever the version). */
function sameProtocol(a: AggregateKey, b: AggregateKey): boolean {
  return a.tenant === b.tenant && a.document === b.document && a.protocol === b.protocol;
}

export function pathKey(path: readonly string[]): string {
  let key = "";
  for (let i = 0; i < path.length; i++) {
    const next = i === 0 ? path[i]! : key + PATH_SEPARATOR + path[i]!;
    if (next.length > MAX_PATH_KEY_LENGTH) return `${key}${PATH_SEPARATOR}…`;
    key = next;
  }
  return key;
}

/** A node of the path-key trie: the key of the path that ends here. */
interface PathNode {
  key: string;
  /** The key was cut here: every longer path has the same key. */
  cut: boolean;
  next: Map<string, PathNode> | undefined;
}
const PATH_TRIE_LIMIT = 4096;
let pathRoot = new Map<string, PathNode>();
let pathNodes = 0;

/**
 * `pathKey(path)`, remembered in a trie of step ids: a history repeats a few paths millions
 * of times, and walking a path's ids costs less than joining them into a new string and
 * hashing it for each map it counts in. Bounded: past PATH_TRIE_LIMIT nodes it starts over.
 */
export function cachedPathKey(path: readonly string[]): string {
  const length = path.length;
  if (length === 0) return "";
  let level = pathRoot;
  let node: PathNode | undefined;
  for (let i = 0; i < length; i++) {
    const id = path[i]!;
    let child = level.get(id);
    if (child === undefined) {
      if (pathNodes >= PATH_TRIE_LIMIT) {
        pathRoot = new Map();
        pathNodes = 0;
        return pathKey(path);
      }
      const next = node === undefined ? id : node.key + PATH_SEPARATOR + id;
      child =
        next.length > MAX_PATH_KEY_LENGTH
          ? { key: `${node === undefined ? "" : node.key}${PATH_SEPARATOR}…`, cut: true, next: undefined }
          : { key: next, cut: false, next: undefined };
      level.set(id, child);
      pathNodes += 1;
    }
    node = child;
    if (node.cut) return node.key;
    if (i + 1 < length) {
      if (node.next === undefined) node.next = new Map();
      level = node.next;
    }
  }
  return node!.key;
}

export function splitPathKey(key: string): string[] {
  return key === "" ? [] : key.split(PATH_SEPARATOR);
}

function stepErrorKey(code: string, httpStatus: number | undefined): string {
  return httpStatus === undefined ? code : `${code}:${httpStatus}`;
}

function timeOf(iso: string): number | undefined {
  const ms = parseTimestamp(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Counts one execution into the aggregate (which must have the record's key). */
export function addExecution(aggregate: ProtocolAggregate, record: ExecutionRecord): void {
  countExecution(aggregate, record, timeOf(record.startedAt));
}

/**
 * `addExecution` with the record's start already read (epoch ms, undefined when unreadable),
 * for the stream that has read it to place the record in its window.
 */
export function countExecution(
  aggregate: ProtocolAggregate,
  record: ExecutionRecord,
  started: number | undefined,
): void {
  if (
    record.tenant !== aggregate.tenant ||
    record.document !== aggregate.document ||
    record.protocol !== aggregate.protocol ||
    (aggregate.version !== undefined && record.documentVersion !== aggregate.version)
  ) {
    throw new MovaError(
      "aggregate_key_mismatch",
      `execution ${record.executionId} belongs to ${record.tenant}/${record.document}/${record.protocol} v${record.documentVersion}, not to ${aggregate.tenant}/${aggregate.document}/${aggregate.protocol}${aggregate.version === undefined ? "" : ` v${aggregate.version}`}`,
    );
  }
  aggregate.executions += 1;
  const status = record.status;
  const finished = status !== "waiting_input";
  const completed = status === "completed";
  if (completed) {
    aggregate.completed += 1;
    const outcome = record.outcome;
    if (outcome === "succeeded") aggregate.quality.succeeded += 1;
    else if (outcome === "unsuccessful") aggregate.quality.unsuccessful += 1;
    else aggregate.quality.unknown += 1;
  } else if (status === "waiting_input") aggregate.waitingInput += 1;
  else {
    aggregate.failed += 1;
    if (status === "timed_out") aggregate.timedOut += 1;
  }
  if (finished) aggregate.duration.add(record.durationMs);

  if (
    started !== undefined &&
    (aggregate.firstStartedAt === undefined || started < aggregate.firstStartedAt)
  ) {
    aggregate.firstStartedAt = started;
  }
  const ended = timeOf(record.finishedAt);
  if (ended !== undefined && (aggregate.lastFinishedAt === undefined || ended > aggregate.lastFinishedAt)) {
    aggregate.lastFinishedAt = ended;
  }

  // Each field of a step is read once: records come in many shapes, so every read is a lookup.
  let lastFailedStep: string | undefined;
  let runPrompt = 0;
  let runCompletion = 0;
  for (const step of record.steps) {
    const id = step.id;
    const action = step.action;
    const status = step.status;
    const stats = aggregate.steps.get(id);
    if (action !== stats.action && (stats.action === "" || action < stats.action)) stats.action = action;
    stats.total += 1;
    const usage = step.usage;
    if (usage !== undefined) {
      const model = step.model ?? NO_MODEL;
      const prompt = usage.promptTokens;
      const completion = usage.completionTokens;
      if (model !== stats.model && (stats.model === "" || model < stats.model)) stats.model = model;
      stats.promptTokens += prompt;
      stats.completionTokens += completion;
      const byModel = aggregate.models.get(model);
      byModel.calls += 1;
      byModel.promptTokens += prompt;
      byModel.completionTokens += completion;
      runPrompt += prompt;
      runCompletion += completion;
    }
    if (status === "skipped") {
      stats.skipped += 1;
      continue;
    }
    const succeeded = status === "succeeded";
    if (succeeded) stats.succeeded += 1;
    else {
      stats.failed += 1;
      lastFailedStep = id;
      stats.errors.get(stepErrorKey(step.error?.code ?? "unknown", step.httpStatus)).n += 1;
    }
    const attempts = step.attempts;
    const durationMs = step.durationMs;
    const retries = attempts > 1 ? attempts - 1 : 0;
    stats.attempts += attempts;
    if (retries > 0) stats.retries += retries;
    stats.latency.add(durationMs);
    const branch = step.branch;
    if (branch === "then") stats.thenTaken += 1;
    else if (branch === "else") stats.elseTaken += 1;

    const toolId = step.toolId;
    if (toolId !== undefined) {
      const tool = aggregate.tools.get(toolId);
      tool.calls += 1;
      if (succeeded) tool.succeeded += 1;
      else tool.failed += 1;
      tool.attempts += attempts;
      if (retries > 0) tool.retries += retries;
      tool.latency.add(durationMs);
    }
    if (action === "prompt" && step.prompt !== undefined) {
      if (succeeded) aggregate.promptSteps.succeeded += 1;
      else aggregate.promptSteps.failed += 1;
      aggregate.terms.countPrompt(step.prompt, succeeded);
    }
  }

  if (finished) {
    const tokens = aggregate.runTokens;
    tokens.runs += 1;
    if (runPrompt !== 0 || runCompletion !== 0) {
      tokens.prompt += runPrompt;
      tokens.completion += runCompletion;
      tokens.promptSq += runPrompt * runPrompt;
      tokens.completionSq += runCompletion * runCompletion;
      tokens.product += runPrompt * runCompletion;
    }
    const key = cachedPathKey(record.path);
    aggregate.pathsTaken.get(key).n += 1;
    if (completed) {
      const path = aggregate.successfulPaths.get(key);
      path.count += 1;
      path.duration.add(record.durationMs);
    } else {
      // A long run's summary names the step itself: its steps and path may be cut before it.
      const failedAt = record.failedStepId ?? lastFailedStep ?? record.path[record.path.length - 1];
      if (failedAt !== undefined) aggregate.steps.get(failedAt).failedRuns += 1;
      aggregate.runErrors.get(record.error?.code ?? "unknown").n += 1;
    }
  }

  if (record.intent !== undefined) {
    const intent = aggregate.intents.get(record.intent);
    intent.runs += 1;
    if (completed) intent.completed += 1;
    else if (status === "waiting_input") intent.waitingInput += 1;
    else {
      intent.failed += 1;
      if (status === "timed_out") intent.timedOut += 1;
    }
  }
}

/** Adds `source` into `target` (same key); `source` is left as it was. */
export function mergeInto(target: ProtocolAggregate, source: ProtocolAggregate): ProtocolAggregate {
  if (!sameProtocol(target, source) || (target.version !== undefined && target.version !== source.version)) {
    throw new MovaError(
      "aggregate_key_mismatch",
      `cannot merge ${source.tenant}/${source.document}/${source.protocol} into ${target.tenant}/${target.document}/${target.protocol}`,
    );
  }
  target.executions += source.executions;
  target.completed += source.completed;
  target.failed += source.failed;
  target.timedOut += source.timedOut;
  target.waitingInput += source.waitingInput;
  target.duration.merge(source.duration);
  if (
    source.firstStartedAt !== undefined &&
    (target.firstStartedAt === undefined || source.firstStartedAt < target.firstStartedAt)
  ) {
    target.firstStartedAt = source.firstStartedAt;
  }
  if (
    source.lastFinishedAt !== undefined &&
    (target.lastFinishedAt === undefined || source.lastFinishedAt > target.lastFinishedAt)
  ) {
    target.lastFinishedAt = source.lastFinishedAt;
  }
  target.steps.mergeFrom(source.steps);
  target.tools.mergeFrom(source.tools);
  target.successfulPaths.mergeFrom(source.successfulPaths);
  target.pathsTaken.mergeFrom(source.pathsTaken);
  target.intents.mergeFrom(source.intents);
  target.promptSteps.succeeded += source.promptSteps.succeeded;
  target.promptSteps.failed += source.promptSteps.failed;
  target.terms.mergeFrom(source.terms);
  target.runErrors.mergeFrom(source.runErrors);
  target.quality.succeeded += source.quality.succeeded;
  target.quality.unsuccessful += source.quality.unsuccessful;
  target.quality.unknown += source.quality.unknown;
  target.models.mergeFrom(source.models);
  const t = target.runTokens;
  const r = source.runTokens;
  t.runs += r.runs;
  t.prompt += r.prompt;
  t.completion += r.completion;
  t.promptSq += r.promptSq;
  t.completionSq += r.completionSq;
  t.product += r.product;
  return target;
}

/** A new aggregate holding both; neither argument changes. Order-independent. */
export function mergeAggregates(a: ProtocolAggregate, b: ProtocolAggregate): ProtocolAggregate {
  return mergeInto(mergeInto(createAggregate(a), a), b);
}

// ---- stored form -------------------------------------------------------------------------

// The stored form's types derive from AggregateJsonSchema (below), its one definition.
type StepAggregateJson = z.infer<typeof StepAggregateJsonSchema>;
type ToolAggregateJson = z.infer<typeof ToolAggregateJsonSchema>;
type PathAggregateJson = z.infer<typeof PathAggregateJsonSchema>;
type IntentAggregateJson = z.infer<typeof IntentAggregateJsonSchema>;
type AggregateJson = z.infer<typeof AggregateJsonSchema>;

/** The stored form: deterministic (sorted keys), so equal aggregates give identical JSON. */
export function aggregateToJSON(aggregate: ProtocolAggregate): AggregateJson {
  const json: AggregateJson = {
    v: 1,
    tenant: aggregate.tenant,
    document: aggregate.document,
    protocol: aggregate.protocol,
    executions: aggregate.executions,
    completed: aggregate.completed,
    failed: aggregate.failed,
    timedOut: aggregate.timedOut,
    waitingInput: aggregate.waitingInput,
    duration: aggregate.duration.toJSON(),
    steps: aggregate.steps.toJSON((s) => ({
      action: s.action,
      total: s.total,
      succeeded: s.succeeded,
      failed: s.failed,
      skipped: s.skipped,
      attempts: s.attempts,
      retries: s.retries,
      failedRuns: s.failedRuns,
      thenTaken: s.thenTaken,
      elseTaken: s.elseTaken,
      latency: s.latency.toJSON(),
      errors: s.errors.toJSON((c) => c.n),
      model: s.model,
      promptTokens: s.promptTokens,
      completionTokens: s.completionTokens,
    })),
    tools: aggregate.tools.toJSON((t) => ({
      calls: t.calls,
      succeeded: t.succeeded,
      failed: t.failed,
      attempts: t.attempts,
      retries: t.retries,
      latency: t.latency.toJSON(),
    })),
    successfulPaths: aggregate.successfulPaths.toJSON((p) => ({
      count: p.count,
      duration: p.duration.toJSON(),
    })),
    pathsTaken: aggregate.pathsTaken.toJSON((c) => c.n),
    intents: aggregate.intents.toJSON((i) => ({ ...i })),
    promptSteps: { ...aggregate.promptSteps },
    terms: aggregate.terms.toJSON((t): [number, number] => [t.succeeded, t.failed]),
    runErrors: aggregate.runErrors.toJSON((c) => c.n),
    quality: { ...aggregate.quality },
    models: aggregate.models.toJSON((m) => ({ ...m })),
    runTokens: { ...aggregate.runTokens },
  };
  if (aggregate.version !== undefined) json.documentVersion = aggregate.version;
  if (aggregate.firstStartedAt !== undefined)
    json.firstStartedAt = new Date(aggregate.firstStartedAt).toISOString();
  if (aggregate.lastFinishedAt !== undefined)
    json.lastFinishedAt = new Date(aggregate.lastFinishedAt).toISOString();
  return json;
}

const count = z.number().int().min(0);
const sketchJson = z.custom<LatencySketchJson>((value) => typeof value === "object" && value !== null);
const bounded = <T extends z.ZodType>(value: T) =>
  z.object({ e: z.record(z.string(), value), o: value.optional() });

const StepAggregateJsonSchema = z.object({
  action: z.string(),
  total: count,
  succeeded: count,
  failed: count,
  skipped: count,
  attempts: count,
  retries: count,
  failedRuns: count,
  thenTaken: count,
  elseTaken: count,
  latency: sketchJson,
  errors: bounded(count),
  // Absent from the aggregates stored before tokens were counted.
  model: z.string().optional(),
  promptTokens: count.optional(),
  completionTokens: count.optional(),
});
const ToolAggregateJsonSchema = z.object({
  calls: count,
  succeeded: count,
  failed: count,
  attempts: count,
  retries: count,
  latency: sketchJson,
});
const PathAggregateJsonSchema = z.object({ count, duration: sketchJson });
const ModelUsageJsonSchema = z.object({ calls: count, promptTokens: count, completionTokens: count });
const QualityJsonSchema = z.object({ succeeded: count, unsuccessful: count, unknown: count });
const RunTokensJsonSchema = z.object({
  runs: count,
  prompt: count,
  completion: count,
  promptSq: count,
  completionSq: count,
  product: count,
});
const IntentAggregateJsonSchema = z.object({
  runs: count,
  completed: count,
  failed: count,
  timedOut: count,
  waitingInput: count,
});

/**
 * The stored form's one definition: its types derive from it, `aggregateFromJSON` reports
 * what is wrong with a stored aggregate against it, and `readAggregateJson` must read
 * exactly what it reads.
 */
export const AggregateJsonSchema = z.object({
  v: z.literal(1),
  tenant: z.string().min(1),
  document: z.string().min(1),
  protocol: z.string().min(1),
  documentVersion: count.optional(),
  executions: count,
  completed: count,
  failed: count,
  timedOut: count,
  waitingInput: count,
  duration: sketchJson,
  firstStartedAt: z.iso.datetime().optional(),
  lastFinishedAt: z.iso.datetime().optional(),
  steps: bounded(StepAggregateJsonSchema),
  tools: bounded(ToolAggregateJsonSchema),
  successfulPaths: bounded(PathAggregateJsonSchema),
  pathsTaken: bounded(count),
  intents: bounded(IntentAggregateJsonSchema),
  promptSteps: z.object({ succeeded: count, failed: count }),
  terms: bounded(z.tuple([count, count])),
  runErrors: bounded(count),
  // Absent from the aggregates stored before versions, quality and tokens were counted.
  quality: QualityJsonSchema.optional(),
  models: bounded(ModelUsageJsonSchema).optional(),
  runTokens: RunTokensJsonSchema.optional(),
});

type Bounded<J> = { e: Record<string, J>; o?: J | undefined };

const isoDateTime = z.iso.datetime();
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
/** `sketchJson`'s test. */
const isSketchJson = (value: unknown): value is LatencySketchJson =>
  typeof value === "object" && value !== null;
const readCount = (value: unknown): number | undefined => (isCount(value) ? value : undefined);

/** What `bounded(value)` gives for `input`, `read` giving what `value` does; undefined for anything unusual. */
function readBounded<J>(input: unknown, read: (value: unknown) => J | undefined): Bounded<J> | undefined {
  if (!isPlainObject(input) || !isPlainObject(input.e)) return undefined;
  const source = input.e;
  const e: Record<string, J> = {};
  for (const key of Object.keys(source)) {
    // The schema's record drops such a key; leave it to the schema.
    if (key === "__proto__") return undefined;
    const value = read(source[key]);
    if (value === undefined) return undefined;
    e[key] = value;
  }
  // Present but undefined (never so in JSON) is the schema's to read.
  if (input.o === undefined) return Object.hasOwn(input, "o") ? undefined : { e };
  const o = read(input.o);
  return o === undefined ? undefined : { e, o };
}

function readStep(input: unknown): StepAggregateJson | undefined {
  if (!isPlainObject(input)) return undefined;
  const { action, total, succeeded, failed, skipped, attempts, retries, failedRuns, thenTaken, elseTaken } =
    input;
  if (
    typeof action !== "string" ||
    !isCount(total) ||
    !isCount(succeeded) ||
    !isCount(failed) ||
    !isCount(skipped) ||
    !isCount(attempts) ||
    !isCount(retries) ||
    !isCount(failedRuns) ||
    !isCount(thenTaken) ||
    !isCount(elseTaken) ||
    !isSketchJson(input.latency)
  ) {
    return undefined;
  }
  const errors = readBounded(input.errors, readCount);
  if (errors === undefined) return undefined;
  const { model, promptTokens, completionTokens } = input;
  if (
    !optional(input, "model", (v) => typeof v === "string") ||
    !optional(input, "promptTokens", isCount) ||
    !optional(input, "completionTokens", isCount)
  ) {
    return undefined;
  }
  // The schema's order of keys.
  const step: StepAggregateJson = {
    action,
    total,
    succeeded,
    failed,
    skipped,
    attempts,
    retries,
    failedRuns,
    thenTaken,
    elseTaken,
    latency: input.latency,
    errors,
  };
  if (model !== undefined) step.model = model as string;
  if (promptTokens !== undefined) step.promptTokens = promptTokens as number;
  if (completionTokens !== undefined) step.completionTokens = completionTokens as number;
  return step;
}

/** An optional field: absent, or a value `valid` accepts (present but undefined is the schema's to read). */
function optional(input: Record<string, unknown>, key: string, valid: (value: unknown) => boolean): boolean {
  const value = input[key];
  return value === undefined ? !Object.hasOwn(input, key) : valid(value);
}

function readCounts<K extends string>(input: unknown, keys: readonly K[]): Record<K, number> | undefined {
  if (!isPlainObject(input)) return undefined;
  const out = {} as Record<K, number>;
  for (const key of keys) {
    const value = input[key];
    if (!isCount(value)) return undefined;
    out[key] = value;
  }
  return out;
}
const QUALITY_KEYS = ["succeeded", "unsuccessful", "unknown"] as const;
const MODEL_KEYS = ["calls", "promptTokens", "completionTokens"] as const;
const RUN_TOKEN_KEYS = ["runs", "prompt", "completion", "promptSq", "completionSq", "product"] as const;

function readTool(input: unknown): ToolAggregateJson | undefined {
  if (!isPlainObject(input)) return undefined;
  const { calls, succeeded, failed, attempts, retries, latency } = input;
  if (
    !isCount(calls) ||
    !isCount(succeeded) ||
    !isCount(failed) ||
    !isCount(attempts) ||
    !isCount(retries) ||
    !isSketchJson(latency)
  ) {
    return undefined;
  }
  return { calls, succeeded, failed, attempts, retries, latency };
}

function readPath(input: unknown): PathAggregateJson | undefined {
  if (!isPlainObject(input) || !isCount(input.count) || !isSketchJson(input.duration)) return undefined;
  return { count: input.count, duration: input.duration };
}

function readIntent(input: unknown): IntentAggregateJson | undefined {
  if (!isPlainObject(input)) return undefined;
  const { runs, completed, failed, timedOut, waitingInput } = input;
  if (
    !isCount(runs) ||
    !isCount(completed) ||
    !isCount(failed) ||
    !isCount(timedOut) ||
    !isCount(waitingInput)
  )
    return undefined;
  return { runs, completed, failed, timedOut, waitingInput };
}

function readTerm(input: unknown): [number, number] | undefined {
  if (!Array.isArray(input) || input.length !== 2 || !isCount(input[0]) || !isCount(input[1]))
    return undefined;
  return [input[0], input[1]];
}

/** An optional time: absent, or a datetime the schema accepts (present but undefined is the schema's to read). */
const readTime = (input: Record<string, unknown>, key: string): boolean => {
  const value = input[key];
  return value === undefined
    ? !Object.hasOwn(input, key)
    : typeof value === "string" && isoDateTime.safeParse(value).success;
};

/**
 * What `AggregateJsonSchema.parse` gives for a well-formed stored aggregate (the same values,
 * keys and key order), read by hand: the schema costs more than the rest of reading one
 * (decoding with the schema alone took ~1.5× as long, an SQS batch's merge with the stored
 * form ~1.14×: BENCHMARKS.md). Undefined for anything unusual, which the schema then reads
 * (and reports) as before. Exported for the property test that it reads nothing otherwise
 * than the schema does.
 */
export function readAggregateJson(input: unknown): AggregateJson | undefined {
  if (!isPlainObject(input)) return undefined;
  const { tenant, document, protocol, executions, completed, failed, timedOut, waitingInput } = input;
  if (
    input.v !== 1 ||
    typeof tenant !== "string" ||
    tenant.length < 1 ||
    typeof document !== "string" ||
    document.length < 1 ||
    typeof protocol !== "string" ||
    protocol.length < 1 ||
    !isCount(executions) ||
    !isCount(completed) ||
    !isCount(failed) ||
    !isCount(timedOut) ||
    !isCount(waitingInput) ||
    !isSketchJson(input.duration) ||
    !readTime(input, "firstStartedAt") ||
    !readTime(input, "lastFinishedAt") ||
    !isPlainObject(input.promptSteps) ||
    !isCount(input.promptSteps.succeeded) ||
    !isCount(input.promptSteps.failed) ||
    !optional(input, "documentVersion", isCount)
  ) {
    return undefined;
  }
  const quality = input.quality === undefined ? undefined : readCounts(input.quality, QUALITY_KEYS);
  const models =
    input.models === undefined
      ? undefined
      : readBounded(input.models, (value) => readCounts(value, MODEL_KEYS));
  const runTokens = input.runTokens === undefined ? undefined : readCounts(input.runTokens, RUN_TOKEN_KEYS);
  if (
    (input.quality !== undefined && quality === undefined) ||
    (input.models !== undefined && models === undefined) ||
    (input.runTokens !== undefined && runTokens === undefined) ||
    (Object.hasOwn(input, "quality") && input.quality === undefined) ||
    (Object.hasOwn(input, "models") && input.models === undefined) ||
    (Object.hasOwn(input, "runTokens") && input.runTokens === undefined)
  ) {
    return undefined;
  }
  const steps = readBounded(input.steps, readStep);
  const tools = readBounded(input.tools, readTool);
  const successfulPaths = readBounded(input.successfulPaths, readPath);
  const pathsTaken = readBounded(input.pathsTaken, readCount);
  const intents = readBounded(input.intents, readIntent);
  const terms = readBounded(input.terms, readTerm);
  const runErrors = readBounded(input.runErrors, readCount);
  if (
    steps === undefined ||
    tools === undefined ||
    successfulPaths === undefined ||
    pathsTaken === undefined ||
    intents === undefined ||
    terms === undefined ||
    runErrors === undefined
  ) {
    return undefined;
  }
  // The times where the schema puts them (after the duration), and only when present.
  const times: Pick<AggregateJson, "firstStartedAt" | "lastFinishedAt"> = {};
  if (input.firstStartedAt !== undefined) times.firstStartedAt = input.firstStartedAt as string;
  if (input.lastFinishedAt !== undefined) times.lastFinishedAt = input.lastFinishedAt as string;
  const json: AggregateJson = {
    v: 1,
    tenant,
    document,
    protocol,
    ...(input.documentVersion !== undefined ? { documentVersion: input.documentVersion as number } : {}),
    executions,
    completed,
    failed,
    timedOut,
    waitingInput,
    duration: input.duration,
    ...times,
    steps,
    tools,
    successfulPaths,
    pathsTaken,
    intents,
    promptSteps: { succeeded: input.promptSteps.succeeded, failed: input.promptSteps.failed },
    terms,
    runErrors,
  };
  if (quality !== undefined) json.quality = quality;
  if (models !== undefined) json.models = models;
  if (runTokens !== undefined) json.runTokens = runTokens;
  return json;
}

/** Reads a stored aggregate; throws MovaError `invalid_aggregate` (or `invalid_sketch`) when it is not one. */
export function aggregateFromJSON(input: unknown): ProtocolAggregate {
  let json = readAggregateJson(input);
  if (json === undefined) {
    const parsed = AggregateJsonSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new MovaError(
        "invalid_aggregate",
        `stored aggregate is invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "unknown"}`,
      );
    }
    json = parsed.data;
  }
  const counter = (n: number): Counter => ({ n });
  const aggregate = createAggregate({
    tenant: json.tenant,
    document: json.document,
    protocol: json.protocol,
    version: json.documentVersion,
  });
  aggregate.executions = json.executions;
  aggregate.completed = json.completed;
  aggregate.failed = json.failed;
  aggregate.timedOut = json.timedOut;
  aggregate.waitingInput = json.waitingInput;
  aggregate.duration = LatencySketch.fromJSON(json.duration);
  aggregate.firstStartedAt = json.firstStartedAt === undefined ? undefined : Date.parse(json.firstStartedAt);
  aggregate.lastFinishedAt = json.lastFinishedAt === undefined ? undefined : Date.parse(json.lastFinishedAt);
  aggregate.steps = BoundedMap.fromJSON(stepSpec, json.steps, (s) => ({
    ...s,
    latency: LatencySketch.fromJSON(s.latency),
    errors: BoundedMap.fromJSON(errorsSpec, s.errors, counter),
    model: s.model ?? "",
    promptTokens: s.promptTokens ?? 0,
    completionTokens: s.completionTokens ?? 0,
  }));
  aggregate.tools = BoundedMap.fromJSON(toolSpec, json.tools, (t) => ({
    ...t,
    latency: LatencySketch.fromJSON(t.latency),
  }));
  aggregate.successfulPaths = BoundedMap.fromJSON(pathSpec, json.successfulPaths, (p) => ({
    count: p.count,
    duration: LatencySketch.fromJSON(p.duration),
  }));
  aggregate.pathsTaken = BoundedMap.fromJSON(pathsTakenSpec, json.pathsTaken, counter);
  aggregate.intents = BoundedMap.fromJSON(intentSpec, json.intents, (i) => ({ ...i }));
  aggregate.promptSteps = { ...json.promptSteps };
  aggregate.terms = BoundedMap.fromJSON(
    termSpec,
    json.terms,
    ([succeeded, failed]) => ({ succeeded, failed }),
    new PromptTermTally(),
  );
  aggregate.runErrors = BoundedMap.fromJSON(runErrorsSpec, json.runErrors, counter);
  if (json.quality !== undefined) aggregate.quality = { ...json.quality };
  if (json.models !== undefined)
    aggregate.models = BoundedMap.fromJSON(modelSpec, json.models, (m) => ({ ...m }));
  if (json.runTokens !== undefined) aggregate.runTokens = { ...json.runTokens };
  return aggregate;
}
