/**
 * The protocol engine: walks a protocol's steps, calling the LLM and tools through ports,
 * suspending on `input` steps and resuming from the suspended run. `advanceRun` goes on from a
 * RunState (a checkpoint) and hands the state to a checkpoint hook after every step, so a run
 * can stop between any two steps and go on elsewhere. Every run keeps its state in its own
 * objects; nothing mutable is shared between runs.
 */
import { MovaError, isMovaError } from "../errors.ts";
import { setMaxListeners } from "node:events";
import { evaluateConditions, hasConditions } from "../mova/conditions.ts";
import { renderTemplate, type Resolver } from "../mova/placeholders.ts";
import type {
  ConditionStep,
  EndStep,
  InputStep,
  MovaDocument,
  ParallelStep,
  PromptStep,
  Protocol,
  Step,
  ToolApiStep,
} from "../mova/schema.ts";
import { SecretRedactor } from "./redact.ts";
import {
  type AttemptFailure,
  isRetryable,
  isRetryableStatus,
  resolveRetryPolicy,
  runWithRetry,
} from "./retry.ts";
import { buildToolRequest } from "./tool-request.ts";
import { toolIdempotencyKey } from "./idempotency-key.ts";
import type { ChatMessage, Clock, EnginePorts, ToolResponse } from "../ports.ts";
import {
  type AdvanceOptions,
  type CheckpointHook,
  DEFAULT_RUN_DEADLINE_MS,
  type ResumeOptions,
  type RunContext,
  type RunOptions,
} from "./run-options.ts";
import {
  RUN_STATE_PATH_TAIL,
  type RunResult,
  type RunState,
  type RunStatus,
  type StepError,
  type StepRecord,
  type SuspendedRun,
} from "../core/run.ts";
import { countVisits, findProtocol, isRunState, isSuspendedRun, newRunState } from "./run-state.ts";
import { createResolver } from "./variables.ts";

const DEFAULT_MAX_STEPS = 200;
const MAX_TIMER_MS = 2_147_483_647;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Used when the caller supplies no clock. */
const realClock: Clock = { now: () => Date.now(), sleep };

/** Why a run was stopped from outside its steps: its deadline, this call's budget, or the caller. */
type StopKind = "deadline" | "budget" | "cancelled";

const STOP_MESSAGES: Record<StopKind, string> = {
  deadline: "the run's deadline passed",
  budget: "the time given to this call ran out",
  cancelled: "the run was cancelled",
};

class RunStop extends Error {
  readonly kind: StopKind;
  constructor(kind: StopKind) {
    super(STOP_MESSAGES[kind]);
    this.kind = kind;
  }
}

/** A budget that runs out is a timeout to the caller, as a deadline is. */
function stopError(kind: StopKind): StepError {
  return { code: kind === "cancelled" ? "cancelled" : "deadline", message: STOP_MESSAGES[kind] };
}

const FINISHED: ReadonlySet<RunStatus> = new Set(["completed", "failed", "timed_out", "cancelled"]);

type SuspendOutcome = { kind: "suspend"; step: InputStep; prompt: string; since: string };

type Outcome =
  | { kind: "goto"; stepId: string | undefined }
  | { kind: "complete" }
  | { kind: "fail"; error: StepError }
  | { kind: "stop" }
  | SuspendOutcome;

/** Where a run goes after a step: on to another, or to an end (a finished status or a wait). */
type Transition =
  | { kind: "next"; stepId: string }
  | { kind: "end"; status: RunStatus; error?: StepError; suspend?: SuspendOutcome };

/** What a run carries from before this call. */
interface Carried {
  variables: Record<string, unknown>;
  path: string[];
  steps: StepRecord[];
  unresolved: string[];
  stepCount: number;
  visits: Record<string, number>;
  startedAt: string;
  deadlineAt: number;
  offline: boolean;
  outputFrom?: string | Record<string, string> | undefined;
}

interface Mode {
  /** advanceRun: results carry the RunState, cancellation is status `cancelled`. */
  durable: boolean;
  keepSteps: boolean;
  checkpoint?: CheckpointHook | undefined;
  shouldPause?: (() => boolean) | undefined;
  /** The state the caller holds as saved (the one the run goes on from). */
  saved?: RunState | undefined;
}

/** Everything one run (or one leg of it, in this call) mutates. */
class LiveRun {
  readonly document: MovaDocument;
  readonly protocol: Protocol;
  readonly stepIndex = new Map<string, number>();
  readonly ports: EnginePorts;
  readonly clock: Clock;
  readonly random: () => number;
  readonly redactor = new SecretRedactor();
  readonly resolve: Resolver;
  readonly variables: Record<string, unknown>;
  readonly path: string[];
  readonly steps: StepRecord[];
  readonly unresolved: string[];
  readonly visits: Record<string, number>;
  readonly replies: string[] = [];
  readonly startedAt: string;
  readonly legStartedMs: number;
  readonly maxSteps: number;
  readonly deadlineAt: number;
  /** Epoch ms when this call's budget runs out, if it has one. */
  readonly budgetAt: number | undefined;
  readonly executionId: string | undefined;
  readonly onStep: ((record: StepRecord) => void) | undefined;
  readonly mode: Mode;
  readonly controller = new AbortController();
  /** The clock's sleep, made once per run for the retry loop of every step. */
  readonly sleep = (ms: number, signal?: AbortSignal): Promise<void> => this.clock.sleep(ms, signal);
  stepCount: number;
  offline: boolean;
  lastOutput: unknown;
  /** Where lastOutput lives among the variables (see RunState.outputFrom). */
  outputFrom: string | Record<string, string> | undefined;
  /** The last state the checkpoint hook accepted (or the caller's own). */
  saved: RunState | undefined;
  /** Records (redacted) made since the last checkpoint, for the next one. */
  #pending: StepRecord[] = [];
  #stopKind: StopKind | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #callerSignal: AbortSignal | undefined;
  #onCallerAbort = () => this.stop("cancelled");

  constructor(
    options: Omit<RunOptions, "protocol" | "variables" | "deadlineMs"> & RunContext,
    protocol: Protocol,
    carried: Carried,
    mode: Mode,
  ) {
    this.document = options.document;
    this.protocol = protocol;
    for (let index = 0; index < protocol.steps.length; index += 1) {
      const id = (protocol.steps[index] as Step).id;
      if (!this.stepIndex.has(id)) this.stepIndex.set(id, index);
    }
    this.ports = options.ports;
    this.clock = options.ports.clock ?? realClock;
    this.random = options.ports.random ?? Math.random;
    this.variables = Object.assign(Object.create(null) as Record<string, unknown>, carried.variables);
    this.path = carried.path;
    this.steps = carried.steps;
    this.unresolved = carried.unresolved;
    this.visits = Object.assign(Object.create(null) as Record<string, number>, carried.visits);
    this.stepCount = carried.stepCount;
    this.offline = carried.offline;
    this.outputFrom = carried.outputFrom;
    this.lastOutput = outputOf(this.variables, carried.outputFrom);
    this.legStartedMs = this.clock.now();
    this.startedAt = carried.startedAt;
    this.maxSteps = options.maxSteps ?? protocol.max_steps ?? DEFAULT_MAX_STEPS;
    this.deadlineAt = carried.deadlineAt;
    this.budgetAt = options.budgetMs === undefined ? undefined : this.legStartedMs + options.budgetMs;
    this.executionId = options.executionId;
    this.onStep = options.onStep;
    this.mode = mode;
    this.saved = mode.saved;
    this.resolve = createResolver({
      variables: this.variables,
      session: options.session,
      profile: options.profile,
      intent: options.intent,
      now: () => this.clock.now(),
      secrets: options.ports.secrets,
      onSecretRead: (name, value) => this.redactor.addSecret(name, value),
    });
    // Every call in flight listens on the run's signal (a wide `parallel` step has many at once);
    // that is by design, not the leak Node warns about beyond ten listeners.
    setMaxListeners(0, this.controller.signal);
    this.#callerSignal = options.signal;
    if (options.signal?.aborted) this.stop("cancelled");
    else options.signal?.addEventListener("abort", this.#onCallerAbort, { once: true });
    if (!this.controller.signal.aborted) this.#armTimer();
  }

  /** The stop due at `now`: the run's deadline first, then this call's budget. */
  #dueStop(now: number): StopKind | undefined {
    if (now >= this.deadlineAt) return "deadline";
    if (this.budgetAt !== undefined && now >= this.budgetAt) return "budget";
    return undefined;
  }

  /** setTimeout fires at once beyond 2^31-1 ms, so a far deadline is reached in several waits. */
  #armTimer(): void {
    const now = this.clock.now();
    const due = this.#dueStop(now);
    if (due) {
      this.stop(due);
      return;
    }
    const at = Math.min(this.deadlineAt, this.budgetAt ?? Number.POSITIVE_INFINITY);
    if (!Number.isFinite(at)) return;
    this.#timer = setTimeout(() => this.#armTimer(), Math.min(at - now, MAX_TIMER_MS));
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stop(kind: StopKind): void {
    if (this.#stopKind) return;
    this.#stopKind = kind;
    this.controller.abort(new RunStop(kind));
  }

  /** Why the run must stop now, if it must. */
  stopKind(): StopKind | undefined {
    if (!this.#stopKind) {
      const due = this.#dueStop(this.clock.now());
      if (due) this.stop(due);
    }
    return this.#stopKind;
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#callerSignal?.removeEventListener("abort", this.#onCallerAbort);
  }

  isoNow(): string {
    return new Date(this.clock.now()).toISOString();
  }

  render(template: string): string {
    const rendered = renderTemplate(template, this.resolve);
    this.noteUnresolved(rendered.unresolved);
    return rendered.text;
  }

  noteUnresolved(paths: readonly string[]): void {
    for (const path of paths) if (!this.unresolved.includes(path)) this.unresolved.push(path);
  }

  step(id: string): Step | undefined {
    const index = this.stepIndex.get(id);
    return index === undefined ? undefined : this.protocol.steps[index];
  }

  /** The step after `step` in the flow: its `next_step`, else the next in the list. */
  following(step: Step): string | undefined {
    if (step.next_step !== undefined) return step.next_step;
    const index = this.stepIndex.get(step.id);
    return index === undefined ? undefined : this.protocol.steps[index + 1]?.id;
  }

  /** Counts a step as entered: the step budget, the path, its visits. */
  enter(step: Step): void {
    this.stepCount += 1;
    this.path.push(step.id);
    this.visits[step.id] = (this.visits[step.id] ?? 0) + 1;
  }

  /** The Idempotency-Key of a tool call by `stepPath` (a step, or a parallel step and its branch). */
  idempotencyKey(stepPath: readonly string[]): string | undefined {
    if (this.executionId === undefined) return undefined;
    return toolIdempotencyKey(this.executionId, stepPath, this.visits[stepPath[0] as string] ?? 1);
  }

  setVariable(name: string, value: unknown): void {
    this.variables[name] = value;
  }

  setOutput(value: unknown, from: string | Record<string, string> | undefined): void {
    this.lastOutput = value;
    this.outputFrom = from;
  }

  /** Reports a finished step to the caller (and to the next checkpoint). */
  emit(record: StepRecord): void {
    if (this.mode.checkpoint) this.#pending.push(this.redactor.redact(record));
    if (!this.onStep) return;
    try {
      this.onStep(this.redactor.redact(record));
    } catch {
      // A failing observer (a history write) must not change the run's outcome.
    }
  }

  /** Keeps a record in the result's steps (unless the caller gets them through the hooks only). */
  keep(record: StepRecord): void {
    if (this.mode.keepSteps) this.steps.push(record);
  }

  record(record: StepRecord): void {
    this.keep(record);
    this.emit(record);
  }

  /** The records made since the last checkpoint, handed over once. */
  takePending(): StepRecord[] {
    const records = this.#pending;
    this.#pending = [];
    return records;
  }

  /** The run's state after `transition`, as plain JSON (a redacted deep copy). */
  snapshot(transition: Transition): RunState {
    const status: RunStatus = transition.kind === "next" ? "running" : transition.status;
    const state: RunState = {
      v: 2,
      protocol: this.protocol.name,
      status,
      variables: this.variables,
      path: this.path.length > RUN_STATE_PATH_TAIL ? this.path.slice(-RUN_STATE_PATH_TAIL) : this.path,
      stepCount: this.stepCount,
      visits: this.visits,
      unresolved: this.unresolved,
      startedAt: this.startedAt,
      deadlineAt: this.deadlineAt,
      offline: this.offline,
      secretNames: this.redactor.names,
    };
    if (transition.kind === "next") state.next = transition.stepId;
    else if (transition.suspend) {
      const { step, prompt, since } = transition.suspend;
      state.next = step.id;
      state.waiting = { prompt, since, variable: step.variable };
    }
    if (FINISHED.has(status)) {
      if (this.lastOutput !== undefined) state.output = this.lastOutput;
      if (transition.kind === "end" && transition.error) state.error = transition.error;
    } else if (this.outputFrom !== undefined) state.outputFrom = this.outputFrom;
    return this.redactor.redact(state);
  }
}

/** The value a RunState's `outputFrom` points at. */
function outputOf(
  variables: Record<string, unknown>,
  from: string | Record<string, string> | undefined,
): unknown {
  if (from === undefined) return undefined;
  if (typeof from === "string") return variables[from];
  const outputs: Record<string, unknown> = {};
  for (const [branch, variable] of Object.entries(from)) outputs[branch] = variables[variable];
  return outputs;
}

function baseRecord(step: Step, startedMs: number): StepRecord {
  return {
    id: step.id,
    action: step.action,
    status: "succeeded",
    attempts: 1,
    startedAt: new Date(startedMs).toISOString(),
    durationMs: 0,
  };
}

function finishRecord(state: LiveRun, record: StepRecord, startedMs: number): StepRecord {
  record.durationMs = Math.max(0, state.clock.now() - startedMs);
  return record;
}

function skippedRecord(state: LiveRun, step: Step): StepRecord {
  const now = state.clock.now();
  return { ...baseRecord(step, now), status: "skipped", attempts: 0 };
}

function guardHolds(state: LiveRun, step: Step): boolean {
  if (step.action === "condition" || !hasConditions(step.conditions)) return true;
  return evaluateConditions(step.conditions, state.resolve);
}

function classifyPortError(error: unknown, fallbackCode: string): AttemptFailure {
  if (error instanceof MovaError) {
    const failure: AttemptFailure = {
      code: error.status !== undefined && fallbackCode === "tool_error" ? "tool_http_status" : error.code,
      message: error.message,
      retryable: isRetryable(error),
    };
    if (error.status !== undefined) failure.httpStatus = error.status;
    return failure;
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: fallbackCode, message, retryable: false };
}

/** Thrown inside a tool attempt for a non-2xx answer, so that the retry loop sees it. */
class HttpStatusFailure extends Error {
  readonly response: ToolResponse;
  constructor(response: ToolResponse) {
    super(`the tool answered HTTP ${response.status}`);
    this.response = response;
  }
}

// The retry loop's classifiers capture nothing, so they are made once, not per step.
const classifyLlmFailure = (error: unknown): AttemptFailure => classifyPortError(error, "llm_error");

const classifyToolFailure = (error: unknown): AttemptFailure => {
  if (error instanceof HttpStatusFailure) {
    return {
      code: "tool_http_status",
      message: error.message,
      retryable: isRetryableStatus(error.response.status),
      httpStatus: error.response.status,
    };
  }
  return classifyPortError(error, "tool_error");
};

type CallableResult = { record: StepRecord; ok: boolean; stopped: boolean; error?: StepError };

async function executePrompt(state: LiveRun, step: PromptStep): Promise<CallableResult> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  const prompt = state.render(step.prompt);
  record.prompt = prompt;
  const systemParts: string[] = [];
  if (step.system) systemParts.push(state.render(step.system));
  for (const id of step.instructions ?? []) {
    const instruction = state.document.instructions.find((item) => item.id === id);
    if (!instruction) {
      record.status = "failed";
      record.attempts = 0;
      record.error = { code: "unknown_reference", message: `the instruction "${id}" does not exist` };
      return {
        record: finishRecord(state, record, startedMs),
        ok: false,
        stopped: false,
        error: record.error,
      };
    }
    systemParts.push(instruction.content);
  }
  const messages: ChatMessage[] = [];
  if (systemParts.length > 0) messages.push({ role: "system", content: systemParts.join("\n\n") });
  messages.push({ role: "user", content: prompt });

  const outcome = await runWithRetry(
    {
      policy: resolveRetryPolicy(step.retry),
      timeoutMs: step.timeout_ms,
      signal: state.signal,
      sleep: state.sleep,
      random: state.random,
      classify: classifyLlmFailure,
    },
    (signal) =>
      state.ports.llm.complete(
        {
          messages,
          ...(step.model !== undefined && { model: step.model }),
          ...(step.temperature !== undefined && { temperature: step.temperature }),
          ...(step.max_tokens !== undefined && { maxTokens: step.max_tokens }),
          ...(step.timeout_ms !== undefined && { timeoutMs: step.timeout_ms }),
        },
        signal,
      ),
  );
  record.attempts = outcome.attempts;
  if (!outcome.ok) return failCallable(state, record, startedMs, outcome.failure);

  const response = outcome.value;
  const variable = step.output ?? `prompt_response_${step.id}`;
  state.setVariable(variable, response.text);
  record.output = response.text;
  record.outputVariable = variable;
  record.model = response.model;
  if (response.usage) record.usage = response.usage;
  if (response.offline || state.ports.llm.offline) {
    record.offline = true;
    state.offline = true;
  }
  state.setOutput(response.text, variable);
  state.replies.push(response.text);
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}

function failCallable(
  state: LiveRun,
  record: StepRecord,
  startedMs: number,
  failure: AttemptFailure,
): CallableResult {
  record.status = "failed";
  const stopKind = failure.aborted ? state.stopKind() : undefined;
  record.error = stopKind ? stopError(stopKind) : { code: failure.code, message: failure.message };
  if (failure.httpStatus !== undefined) record.httpStatus = failure.httpStatus;
  return {
    record: finishRecord(state, record, startedMs),
    ok: false,
    stopped: stopKind !== undefined,
    error: record.error,
  };
}

/** `parallelId`: the parallel step this one runs as a branch of (its Idempotency-Key names both). */
async function executeTool(state: LiveRun, step: ToolApiStep, parallelId?: string): Promise<CallableResult> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  record.toolId = step.tool_api_id;
  const tool = state.document.tools.find((item) => item.id === step.tool_api_id);
  if (!tool) {
    record.attempts = 0;
    return failCallable(state, record, startedMs, {
      code: "unknown_reference",
      message: `the tool "${step.tool_api_id}" does not exist`,
      retryable: false,
    });
  }
  const timeoutMs = step.timeout_ms ?? tool.timeout_ms;
  let built: ReturnType<typeof buildToolRequest>;
  try {
    built = buildToolRequest(tool, state.resolve, { timeoutMs });
  } catch (error) {
    record.attempts = 0;
    const code = isMovaError(error) ? error.code : "tool_error";
    return failCallable(state, record, startedMs, {
      code,
      message: (error as Error).message,
      retryable: false,
    });
  }
  state.noteUnresolved(built.unresolved);
  for (const value of built.derivedSecrets) state.redactor.addValue(value);
  const idempotencyKey = state.idempotencyKey(parallelId === undefined ? [step.id] : [parallelId, step.id]);
  const request = idempotencyKey === undefined ? built.request : { ...built.request, idempotencyKey };

  const outcome = await runWithRetry(
    {
      policy: resolveRetryPolicy(step.retry, tool.retry),
      timeoutMs,
      signal: state.signal,
      sleep: state.sleep,
      random: state.random,
      classify: classifyToolFailure,
    },
    async (signal) => {
      const response = await state.ports.tools.call(request, signal);
      if (response.status < 200 || response.status > 299) throw new HttpStatusFailure(response);
      return response;
    },
  );
  record.attempts = outcome.attempts;
  if (!outcome.ok) return failCallable(state, record, startedMs, outcome.failure);

  const variable = step.output ?? `${step.id}_result`;
  state.setVariable(variable, outcome.value.body);
  record.httpStatus = outcome.value.status;
  record.output = outcome.value.body;
  record.outputVariable = variable;
  state.setOutput(outcome.value.body, variable);
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}

/** A `prompt` or `tool_api` step with its guard, as run on its own or as a parallel branch. */
async function executeCallable(
  state: LiveRun,
  step: PromptStep | ToolApiStep,
  parallelId?: string,
): Promise<CallableResult | null> {
  if (!guardHolds(state, step)) return null;
  return step.action === "prompt" ? executePrompt(state, step) : executeTool(state, step, parallelId);
}

function callableOutcome(state: LiveRun, step: Step, result: CallableResult): Outcome {
  if (result.stopped) return { kind: "stop" };
  if (!result.ok) return { kind: "fail", error: stepFailure(step, result.error) };
  return { kind: "goto", stepId: state.following(step) };
}

function stepFailure(step: Step, error: StepError | undefined): StepError {
  const cause = error ?? { code: "step_failed", message: "the step failed" };
  return { code: cause.code, message: `step "${step.id}" failed: ${cause.message}` };
}

async function executeParallel(state: LiveRun, step: ParallelStep): Promise<Outcome> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  record.branches = [...step.steps];
  const branches: Array<PromptStep | ToolApiStep> = [];
  for (const id of step.steps) {
    const branch = state.step(id);
    if (!branch || (branch.action !== "prompt" && branch.action !== "tool_api")) {
      record.status = "failed";
      record.attempts = 0;
      record.error = {
        code: branch ? "invalid_parallel_branch" : "unknown_reference",
        message: branch
          ? `the branch "${id}" is a ${branch.action} step; only prompt and tool_api steps run in parallel`
          : `the branch "${id}" does not exist`,
      };
      state.record(finishRecord(state, record, startedMs));
      return { kind: "fail", error: stepFailure(step, record.error) };
    }
    branches.push(branch);
  }

  const results = await Promise.all(
    branches.map(async (branch) => {
      const result = await executeCallable(state, branch, step.id);
      const branchRecord = result ? result.record : skippedRecord(state, branch);
      state.emit(branchRecord);
      return { branch, result, branchRecord };
    }),
  );
  const outputs: Record<string, unknown> = {};
  const outputFrom: Record<string, string> = {};
  let failure: StepError | undefined;
  let stopped = false;
  for (const { branch, result, branchRecord } of results) {
    state.keep(branchRecord);
    if (result?.stopped) stopped = true;
    else if (result && !result.ok && !failure)
      failure = {
        code: result.error?.code ?? "step_failed",
        message: `branch "${branch.id}" failed: ${result.error?.message ?? ""}`,
      };
    if (result?.ok) {
      outputs[branch.id] = result.record.output;
      if (result.record.outputVariable !== undefined) outputFrom[branch.id] = result.record.outputVariable;
    }
  }
  if (stopped) {
    const kind = state.stopKind();
    record.status = "failed";
    record.error = stopError(kind ?? "cancelled");
    state.record(finishRecord(state, record, startedMs));
    return { kind: "stop" };
  }
  if (failure) {
    record.status = "failed";
    record.error = failure;
    state.record(finishRecord(state, record, startedMs));
    return { kind: "fail", error: stepFailure(step, failure) };
  }
  record.output = outputs;
  state.setOutput(outputs, outputFrom);
  state.record(finishRecord(state, record, startedMs));
  return { kind: "goto", stepId: state.following(step) };
}

function executeCondition(state: LiveRun, step: ConditionStep): Outcome {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  const holds = evaluateConditions(step.conditions, state.resolve);
  record.branch = holds ? "then" : "else";
  state.record(finishRecord(state, record, startedMs));
  if (holds) return { kind: "goto", stepId: state.following(step) };
  return step.else_step === undefined ? { kind: "complete" } : { kind: "goto", stepId: step.else_step };
}

function executeEnd(state: LiveRun, step: EndStep): Outcome {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  if (step.response_template !== undefined) {
    const output = state.render(step.response_template);
    record.output = output;
    state.setOutput(output, undefined);
    state.replies.push(output);
  }
  state.record(finishRecord(state, record, startedMs));
  return { kind: "complete" };
}

async function executeStep(state: LiveRun, step: Step): Promise<Outcome> {
  if (!guardHolds(state, step)) {
    state.record(skippedRecord(state, step));
    return { kind: "goto", stepId: state.following(step) };
  }
  switch (step.action) {
    case "prompt":
    case "tool_api": {
      const result =
        step.action === "prompt" ? await executePrompt(state, step) : await executeTool(state, step);
      state.record(result.record);
      return callableOutcome(state, step, result);
    }
    case "input": {
      const prompt = state.render(step.prompt);
      state.replies.push(prompt);
      return { kind: "suspend", step, prompt, since: state.isoNow() };
    }
    case "condition":
      return executeCondition(state, step);
    case "parallel":
      return executeParallel(state, step);
    case "end":
      return executeEnd(state, step);
  }
}

/** The end of a run stopped from outside: its deadline or budget passed, or it was cancelled. */
function stopped(kind: StopKind): Transition {
  return { kind: "end", status: kind === "cancelled" ? "cancelled" : "timed_out", error: stopError(kind) };
}

/** The flow ran out of steps: completed, unless the run was stopped meanwhile. */
function endOfFlow(state: LiveRun): Transition {
  const kind = state.stopKind();
  return kind ? stopped(kind) : { kind: "end", status: "completed" };
}

function transitionOf(state: LiveRun, outcome: Outcome): Transition {
  switch (outcome.kind) {
    case "goto":
      return outcome.stepId === undefined ? endOfFlow(state) : { kind: "next", stepId: outcome.stepId };
    case "complete":
      return { kind: "end", status: "completed" };
    case "fail":
      return { kind: "end", status: "failed", error: outcome.error };
    case "stop":
      return stopped(state.stopKind() ?? "cancelled");
    case "suspend":
      return { kind: "end", status: "waiting_input", suspend: outcome };
  }
}

/** The step to run next, or why the run ends before it. */
function nextStep(state: LiveRun, stepId: string): { step: Step } | { end: Transition } {
  const kind = state.stopKind();
  if (kind) return { end: stopped(kind) };
  if (state.stepCount >= state.maxSteps) {
    const error = { code: "max_steps", message: `the run stopped after ${state.maxSteps} steps` };
    return { end: { kind: "end", status: "failed", error } };
  }
  const step = state.step(stepId);
  if (step) return { step };
  const error = { code: "unknown_reference", message: `the step "${stepId}" does not exist` };
  return { end: { kind: "end", status: "failed", error } };
}

interface Ending {
  transition: Transition;
  /** The checkpoint hook threw: the run stops `running` at the last state it accepted. */
  checkpointError?: unknown;
}

function finish(state: LiveRun, ending: Ending): RunResult {
  state.dispose();
  const { transition, checkpointError } = ending;
  const failedCheckpoint = "checkpointError" in ending;
  let status: RunStatus = failedCheckpoint || transition.kind === "next" ? "running" : transition.status;
  // runProtocol and resumeRun report a cancelled run as they always did.
  if (status === "cancelled" && !state.mode.durable) status = "failed";
  const finishedMs = state.clock.now();
  const result: RunResult = {
    status,
    protocol: state.protocol.name,
    output: state.lastOutput,
    // Copied below with the rest of the result.
    variables: state.variables,
    steps: state.steps,
    path: state.path,
    unresolved: state.unresolved,
    replies: state.replies,
    startedAt: state.startedAt,
    finishedAt: new Date(finishedMs).toISOString(),
    durationMs: Math.max(0, finishedMs - Date.parse(state.startedAt)),
    offline: state.offline,
  };
  if (failedCheckpoint) result.error = checkpointFailure(checkpointError);
  else if (transition.kind === "end" && transition.error) result.error = transition.error;
  const suspend = !failedCheckpoint && transition.kind === "end" ? transition.suspend : undefined;
  if (suspend) {
    const { step, prompt } = suspend;
    result.waitingFor = { stepId: step.id, prompt, variable: step.variable };
    if (!state.mode.durable) result.suspended = suspendedRunOf(state, suspend);
  }
  if (state.mode.durable) {
    const saved = state.mode.checkpoint ? state.saved : undefined;
    result.state = failedCheckpoint || saved ? saved : state.snapshot(transition);
  }
  // The redacted copy is also a deep copy: the result shares nothing with the run's state.
  const redacted = state.redactor.redact(result);
  if (failedCheckpoint) redacted.checkpointError = checkpointError;
  return redacted;
}

function checkpointFailure(error: unknown): StepError {
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: isMovaError(error) ? error.code : "checkpoint_failed",
    message: `the run's checkpoint could not be written: ${message}`,
  };
}

/** The session's form of a run waiting for input: every record so far, the whole path. */
function suspendedRunOf(state: LiveRun, suspend: SuspendOutcome): SuspendedRun {
  return {
    v: 1,
    protocol: state.protocol.name,
    stepId: suspend.step.id,
    variables: state.variables,
    path: state.path,
    steps: state.steps,
    stepCount: state.stepCount,
    unresolved: state.unresolved,
    startedAt: state.startedAt,
    deadlineAt: state.deadlineAt,
    offline: state.offline,
    secretNames: state.redactor.names,
    waiting: { prompt: suspend.prompt, since: suspend.since },
    visits: { ...state.visits },
  };
}

/**
 * Hands the state after `transition` to the checkpoint hook. Answers the ending when the run
 * must stop here for it: the hook failed, or it refused a state too large (the step fails).
 */
async function checkpoint(state: LiveRun, transition: Transition): Promise<Ending | undefined> {
  const hook = state.mode.checkpoint;
  if (!hook) return undefined;
  const snapshot = state.snapshot(transition);
  const records = state.takePending();
  try {
    await hook(snapshot, records);
    state.saved = snapshot;
    return undefined;
  } catch (error) {
    if (!isMovaError(error, "state_too_large")) return { transition, checkpointError: error };
    return failTooLarge(state, error, records);
  }
}

/**
 * The step made the state too large to checkpoint: it fails with `state_too_large`, and the
 * run ends failed with the variables of the last state that was accepted (which fit).
 */
async function failTooLarge(state: LiveRun, error: MovaError, records: StepRecord[]): Promise<Ending> {
  const stepId = state.path.at(-1) ?? "";
  const cause: StepError = { code: "state_too_large", message: error.message };
  const transition: Transition = {
    kind: "end",
    status: "failed",
    error: { code: cause.code, message: `step "${stepId}" failed: ${cause.message}` },
  };
  const last = records.at(-1);
  const failedRecords = records.slice(0, -1);
  if (last) {
    failedRecords.push({ ...last, status: "failed", error: cause });
    const kept = state.steps.at(-1);
    if (state.mode.keepSteps && kept?.id === last.id) {
      kept.status = "failed";
      kept.error = cause;
    }
  }
  const snapshot = state.snapshot(transition);
  if (state.saved) snapshot.variables = state.saved.variables;
  delete snapshot.output;
  try {
    await state.mode.checkpoint?.(snapshot, failedRecords);
    state.saved = snapshot;
    return { transition };
  } catch (again) {
    return { transition, checkpointError: again };
  }
}

/**
 * Runs steps from `first` on. `settled`: `first` is where the caller's state already stands
 * (nothing to checkpoint); otherwise it ends a step (an input's reply) that needs its checkpoint.
 */
async function drive(state: LiveRun, first: Transition, settled: boolean): Promise<RunResult> {
  let transition = first;
  let checkpointDue = !settled;
  try {
    for (;;) {
      if (checkpointDue) {
        const stop = await checkpoint(state, transition);
        if (stop) return finish(state, stop);
        if (transition.kind === "next" && state.mode.shouldPause?.()) return finish(state, { transition });
      }
      if (transition.kind === "end") return finish(state, { transition });
      const next = nextStep(state, transition.stepId);
      checkpointDue = true;
      if ("end" in next) {
        transition = next.end;
        continue;
      }
      state.enter(next.step);
      transition = transitionOf(state, await executeStep(state, next.step));
    }
  } finally {
    state.dispose();
  }
}

/** Where a run starts: its first step, or (an empty flow) its end. */
function startOf(state: LiveRun, stepId: string | undefined): Transition {
  return stepId === undefined ? endOfFlow(state) : { kind: "next", stepId };
}

function carriedOf(state: RunState): Carried {
  return {
    variables: state.variables,
    path: state.path,
    steps: [],
    unresolved: state.unresolved,
    stepCount: state.stepCount,
    visits: state.visits,
    startedAt: state.startedAt,
    deadlineAt: state.deadlineAt,
    offline: state.offline,
    outputFrom: state.outputFrom,
  };
}

/** Runs a protocol from its start until it completes, fails, times out or waits for input. */
export async function runProtocol(options: RunOptions): Promise<RunResult> {
  const protocol = findProtocol(options.document, options.protocol);
  const clock = options.ports.clock ?? realClock;
  const initial = newRunState({
    document: options.document,
    protocol: protocol.name,
    variables: options.variables ?? {},
    ...(options.deadlineMs !== undefined && { deadlineMs: options.deadlineMs }),
    now: clock.now(),
  });
  const state = new LiveRun(options, protocol, carriedOf(initial), { durable: false, keepSteps: true });
  return drive(state, startOf(state, initial.next), true);
}

/** Secrets are never stored with a run: re-read them by name so that they stay redacted. */
function rereadSecrets(state: LiveRun, names: readonly string[] | undefined, options: RunOptions["ports"]) {
  for (const name of names ?? []) {
    const value = options.secrets?.get(name);
    if (value !== undefined) state.redactor.addSecret(name, value);
  }
}

/** Completes the `input` step waited on with the user's reply; answers where the run goes next. */
function applyReply(
  state: LiveRun,
  step: InputStep,
  reply: string,
  waiting: { prompt: string; since: string } | undefined,
): Transition {
  const nowMs = state.clock.now();
  const sinceMs = waiting ? Date.parse(waiting.since) : Number.NaN;
  const record: StepRecord = {
    id: step.id,
    action: step.action,
    status: "succeeded",
    attempts: 1,
    startedAt: Number.isNaN(sinceMs) ? new Date(nowMs).toISOString() : (waiting?.since as string),
    durationMs: Number.isNaN(sinceMs) ? 0 : Math.max(0, nowMs - sinceMs),
    prompt: waiting?.prompt ?? state.render(step.prompt),
    output: reply,
    outputVariable: step.variable,
  };
  state.setVariable(step.variable, reply);
  state.setVariable("user_input", reply);
  state.setOutput(reply, step.variable);
  state.record(record);
  return transitionOf(state, { kind: "goto", stepId: state.following(step) });
}

/** Resumes a run suspended on an `input` step with the user's reply. */
export async function resumeRun(options: ResumeOptions): Promise<RunResult> {
  const { suspended, reply } = options;
  if (!isSuspendedRun(suspended)) {
    throw new MovaError("invalid_suspended_run", "the suspended run is not a version 1 suspended run");
  }
  const protocol = findProtocol(options.document, suspended.protocol);
  const step = protocol.steps.find((item) => item.id === suspended.stepId);
  if (step?.action !== "input") {
    throw new MovaError(
      "invalid_suspended_run",
      `the protocol "${protocol.name}" has no input step "${suspended.stepId}" to resume`,
    );
  }
  const copy = structuredClone(suspended);
  const startedMs = Date.parse(copy.startedAt);
  // Runs suspended before visits were kept may hold the request's deadline as theirs (time spent
  // waiting for the user counted against it): theirs is recomputed from the protocol.
  const deadlineAt =
    copy.visits !== undefined && copy.deadlineAt !== undefined
      ? copy.deadlineAt
      : (Number.isFinite(startedMs) ? startedMs : (options.ports.clock ?? realClock).now()) +
        (protocol.deadline_ms ?? DEFAULT_RUN_DEADLINE_MS);
  const state = new LiveRun(
    options,
    protocol,
    {
      variables: copy.variables,
      path: copy.path,
      steps: copy.steps,
      unresolved: copy.unresolved,
      stepCount: copy.stepCount,
      visits: copy.visits ?? countVisits(copy.path),
      startedAt: copy.startedAt,
      deadlineAt,
      offline: copy.offline === true,
    },
    { durable: false, keepSteps: true },
  );
  rereadSecrets(state, copy.secretNames, options.ports);
  return drive(state, applyReply(state, step, reply, copy.waiting), false);
}

/**
 * Advances a run from its state (a new run's, a checkpoint, or a previous call's) until it
 * finishes, waits for input, `shouldPause` says so, or a checkpoint fails. After every step
 * the awaited `checkpoint` hook gets the state and the step's records; a `waiting_input` state
 * needs the `reply`. The result's `state` is where the run stands (status `running`: advance
 * it again from there).
 */
export async function advanceRun(options: AdvanceOptions): Promise<RunResult> {
  const given = options.state;
  if (!isRunState(given))
    throw new MovaError("invalid_run_state", "the run state is not a version 2 run state");
  if (FINISHED.has(given.status)) {
    throw new MovaError(
      "run_finished",
      `the run already ended (${given.status}); there is nothing to advance`,
    );
  }
  const protocol = findProtocol(options.document, given.protocol);
  const waitedOn = given.status === "waiting_input" && given.next !== undefined ? given.next : undefined;
  const inputStep = waitedOn === undefined ? undefined : protocol.steps.find((item) => item.id === waitedOn);
  if (given.status === "waiting_input") {
    if (inputStep?.action !== "input") {
      throw new MovaError(
        "invalid_run_state",
        `the protocol "${protocol.name}" has no input step "${waitedOn}"`,
      );
    }
    if (options.reply === undefined) {
      throw new MovaError("reply_required", `the run waits for input at step "${waitedOn}"; give the reply`);
    }
  } else if (given.status !== "running") {
    throw new MovaError("invalid_run_state", `a run ${given.status} cannot be advanced`);
  } else if (options.reply !== undefined) {
    throw new MovaError("unexpected_reply", "the run does not wait for input");
  }
  const copy = structuredClone(given);
  const state = new LiveRun(options, protocol, carriedOf(copy), {
    durable: true,
    keepSteps: options.keepSteps ?? true,
    checkpoint: options.checkpoint,
    shouldPause: options.shouldPause,
    saved: given,
  });
  rereadSecrets(state, copy.secretNames, options.ports);
  if (inputStep?.action === "input" && options.reply !== undefined) {
    return drive(state, applyReply(state, inputStep, options.reply, copy.waiting), false);
  }
  return drive(state, startOf(state, copy.next), true);
}
