/**
 * The protocol engine: walks a protocol's steps, calling the LLM and tools through ports,
 * suspending on `input` steps and resuming from the suspended run. Every run keeps its
 * state in its own objects; nothing mutable is shared between runs.
 */
import { MovaError, isMovaError } from "../errors.ts";
import { setMaxListeners } from "node:events";
import { evaluateConditions } from "../mova/conditions.ts";
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
import type { ChatMessage, Clock, EnginePorts, ToolResponse } from "../core/ports.ts";
import type { ResumeOptions, RunContext, RunOptions } from "./run-options.ts";
import type { RunResult, RunStatus, StepError, StepRecord, SuspendedRun } from "../core/run.ts";
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

/** Why a run was stopped from outside its steps. */
type StopKind = "deadline" | "cancelled";

class RunStop extends Error {
  readonly kind: StopKind;
  constructor(kind: StopKind) {
    super(kind === "deadline" ? "the run's deadline passed" : "the run was cancelled");
    this.kind = kind;
  }
}

function stopError(kind: StopKind): StepError {
  return kind === "deadline"
    ? { code: "deadline", message: "the run's deadline passed" }
    : { code: "cancelled", message: "the run was cancelled" };
}

type Outcome =
  | { kind: "goto"; stepId: string | undefined }
  | { kind: "complete" }
  | { kind: "fail"; error: StepError }
  | { kind: "stop" }
  | { kind: "suspend"; step: InputStep; prompt: string; since: string };

/** Everything one run (or one resumed leg of it) mutates. */
class RunState {
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
  readonly replies: string[] = [];
  readonly startedAt: string;
  readonly legStartedMs: number;
  readonly maxSteps: number;
  readonly deadlineAt: number | undefined;
  readonly onStep: ((record: StepRecord) => void) | undefined;
  readonly controller = new AbortController();
  /** The clock's sleep, made once per run for the retry loop of every step. */
  readonly sleep = (ms: number, signal?: AbortSignal): Promise<void> => this.clock.sleep(ms, signal);
  stepCount: number;
  offline: boolean;
  lastOutput: unknown;
  #stopKind: StopKind | undefined;
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #callerSignal: AbortSignal | undefined;
  #onCallerAbort = () => this.stop("cancelled");

  constructor(
    options: Omit<RunOptions, "protocol" | "variables"> & RunContext,
    protocol: Protocol,
    carried: {
      variables: Record<string, unknown>;
      path: string[];
      steps: StepRecord[];
      unresolved: string[];
      stepCount: number;
      startedAt?: string;
      deadlineAt?: number | undefined;
      offline: boolean;
    },
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
    this.stepCount = carried.stepCount;
    this.offline = carried.offline;
    this.legStartedMs = this.clock.now();
    this.startedAt = carried.startedAt ?? new Date(this.legStartedMs).toISOString();
    this.maxSteps = options.maxSteps ?? protocol.max_steps ?? DEFAULT_MAX_STEPS;
    const deadlineMs = options.deadlineMs ?? protocol.deadline_ms;
    this.deadlineAt =
      carried.deadlineAt ?? (deadlineMs === undefined ? undefined : this.legStartedMs + deadlineMs);
    this.onStep = options.onStep;
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
    if (this.deadlineAt !== undefined && !this.controller.signal.aborted) this.#armDeadline(this.deadlineAt);
  }

  /** setTimeout fires at once beyond 2^31-1 ms, so a far deadline is reached in several waits. */
  #armDeadline(deadlineAt: number): void {
    const remaining = deadlineAt - this.clock.now();
    if (remaining <= 0) {
      this.stop("deadline");
      return;
    }
    this.#deadlineTimer = setTimeout(() => this.#armDeadline(deadlineAt), Math.min(remaining, MAX_TIMER_MS));
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
    if (!this.#stopKind && this.deadlineAt !== undefined && this.clock.now() >= this.deadlineAt)
      this.stop("deadline");
    return this.#stopKind;
  }

  dispose(): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
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

  setVariable(name: string, value: unknown): void {
    this.variables[name] = value;
  }

  /** Reports a finished step to the caller. */
  emit(record: StepRecord): void {
    if (!this.onStep) return;
    try {
      this.onStep(this.redactor.redact(record));
    } catch {
      // A failing observer (a history write) must not change the run's outcome.
    }
  }

  record(record: StepRecord): void {
    this.steps.push(record);
    this.emit(record);
  }
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

function finishRecord(state: RunState, record: StepRecord, startedMs: number): StepRecord {
  record.durationMs = Math.max(0, state.clock.now() - startedMs);
  return record;
}

function skippedRecord(state: RunState, step: Step): StepRecord {
  const now = state.clock.now();
  return { ...baseRecord(step, now), status: "skipped", attempts: 0 };
}

function guardHolds(state: RunState, step: Step): boolean {
  if (step.action === "condition" || !step.conditions || step.conditions.length === 0) return true;
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

async function executePrompt(state: RunState, step: PromptStep): Promise<CallableResult> {
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
  state.lastOutput = response.text;
  state.replies.push(response.text);
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}

function failCallable(
  state: RunState,
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

async function executeTool(state: RunState, step: ToolApiStep): Promise<CallableResult> {
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
      const response = await state.ports.tools.call(built.request, signal);
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
  state.lastOutput = outcome.value.body;
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}

/** A `prompt` or `tool_api` step with its guard, as run on its own or as a parallel branch. */
async function executeCallable(
  state: RunState,
  step: PromptStep | ToolApiStep,
): Promise<CallableResult | null> {
  if (!guardHolds(state, step)) return null;
  return step.action === "prompt" ? executePrompt(state, step) : executeTool(state, step);
}

function callableOutcome(state: RunState, step: Step, result: CallableResult): Outcome {
  if (result.stopped) return { kind: "stop" };
  if (!result.ok) return { kind: "fail", error: stepFailure(step, result.error) };
  return { kind: "goto", stepId: state.following(step) };
}

function stepFailure(step: Step, error: StepError | undefined): StepError {
  const cause = error ?? { code: "step_failed", message: "the step failed" };
  return { code: cause.code, message: `step "${step.id}" failed: ${cause.message}` };
}

async function executeParallel(state: RunState, step: ParallelStep): Promise<Outcome> {
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
      const result = await executeCallable(state, branch);
      const branchRecord = result ? result.record : skippedRecord(state, branch);
      state.emit(branchRecord);
      return { branch, result, branchRecord };
    }),
  );
  const outputs: Record<string, unknown> = {};
  let failure: StepError | undefined;
  let stopped = false;
  for (const { branch, result, branchRecord } of results) {
    state.steps.push(branchRecord);
    if (result?.stopped) stopped = true;
    else if (result && !result.ok && !failure)
      failure = {
        code: result.error?.code ?? "step_failed",
        message: `branch "${branch.id}" failed: ${result.error?.message ?? ""}`,
      };
    if (result?.ok) outputs[branch.id] = result.record.output;
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
  state.lastOutput = outputs;
  state.record(finishRecord(state, record, startedMs));
  return { kind: "goto", stepId: state.following(step) };
}

function executeCondition(state: RunState, step: ConditionStep): Outcome {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  const holds = evaluateConditions(step.conditions, state.resolve);
  record.branch = holds ? "then" : "else";
  state.record(finishRecord(state, record, startedMs));
  if (holds) return { kind: "goto", stepId: state.following(step) };
  return step.else_step === undefined ? { kind: "complete" } : { kind: "goto", stepId: step.else_step };
}

function executeEnd(state: RunState, step: EndStep): Outcome {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  if (step.response_template !== undefined) {
    const output = state.render(step.response_template);
    record.output = output;
    state.lastOutput = output;
    state.replies.push(output);
  }
  state.record(finishRecord(state, record, startedMs));
  return { kind: "complete" };
}

async function executeStep(state: RunState, step: Step): Promise<Outcome> {
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

function finish(
  state: RunState,
  status: RunStatus,
  extra: { error?: StepError; suspend?: Extract<Outcome, { kind: "suspend" }> } = {},
): RunResult {
  state.dispose();
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
  if (extra.error) result.error = extra.error;
  if (extra.suspend) {
    const { step, prompt, since } = extra.suspend;
    result.waitingFor = { stepId: step.id, prompt, variable: step.variable };
    const suspended: SuspendedRun = {
      v: 1,
      protocol: state.protocol.name,
      stepId: step.id,
      variables: state.variables,
      path: state.path,
      steps: state.steps,
      stepCount: state.stepCount,
      unresolved: state.unresolved,
      startedAt: state.startedAt,
      offline: state.offline,
      secretNames: state.redactor.names,
      waiting: { prompt, since },
    };
    if (state.deadlineAt !== undefined) suspended.deadlineAt = state.deadlineAt;
    result.suspended = suspended;
  }
  // The redacted copy is also a deep copy: the result shares nothing with the run's state.
  return state.redactor.redact(result);
}

async function drive(state: RunState, firstStepId: string | undefined): Promise<RunResult> {
  let current = firstStepId;
  try {
    while (current !== undefined) {
      const stopKind = state.stopKind();
      if (stopKind)
        return finish(state, stopKind === "deadline" ? "timed_out" : "failed", {
          error: stopError(stopKind),
        });
      if (state.stepCount >= state.maxSteps) {
        return finish(state, "failed", {
          error: { code: "max_steps", message: `the run stopped after ${state.maxSteps} steps` },
        });
      }
      const step = state.step(current);
      if (!step) {
        return finish(state, "failed", {
          error: { code: "unknown_reference", message: `the step "${current}" does not exist` },
        });
      }
      state.stepCount += 1;
      state.path.push(step.id);
      const outcome = await executeStep(state, step);
      switch (outcome.kind) {
        case "goto":
          current = outcome.stepId;
          break;
        case "complete":
          return finish(state, "completed");
        case "fail":
          return finish(state, "failed", { error: outcome.error });
        case "stop": {
          const kind = state.stopKind() ?? "cancelled";
          return finish(state, kind === "deadline" ? "timed_out" : "failed", { error: stopError(kind) });
        }
        case "suspend":
          return finish(state, "waiting_input", { suspend: outcome });
      }
    }
    const stopKind = state.stopKind();
    if (stopKind)
      return finish(state, stopKind === "deadline" ? "timed_out" : "failed", { error: stopError(stopKind) });
    return finish(state, "completed");
  } finally {
    state.dispose();
  }
}

function findProtocol(document: MovaDocument, name: string): Protocol {
  const protocol = document.protocols.find((item) => item.name === name);
  if (!protocol)
    throw new MovaError("unknown_protocol", `the protocol "${name}" does not exist in the document`);
  return protocol;
}

/** Runs a protocol from its start until it completes, fails, times out or waits for input. */
export async function runProtocol(options: RunOptions): Promise<RunResult> {
  const protocol = findProtocol(options.document, options.protocol);
  const variables = structuredClone(options.variables ?? {});
  const state = new RunState(options, protocol, {
    variables,
    path: [],
    steps: [],
    unresolved: [],
    stepCount: 0,
    offline: false,
  });
  return drive(state, protocol.start ?? protocol.steps[0]?.id);
}

function isSuspendedRun(value: unknown): value is SuspendedRun {
  if (value === null || typeof value !== "object") return false;
  const run = value as Record<string, unknown>;
  return (
    run.v === 1 &&
    typeof run.protocol === "string" &&
    typeof run.stepId === "string" &&
    run.variables !== null &&
    typeof run.variables === "object" &&
    Array.isArray(run.path) &&
    Array.isArray(run.steps) &&
    typeof run.stepCount === "number" &&
    Array.isArray(run.unresolved) &&
    typeof run.startedAt === "string" &&
    (run.deadlineAt === undefined || typeof run.deadlineAt === "number")
  );
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
  const state = new RunState(options, protocol, {
    variables: copy.variables,
    path: copy.path,
    steps: copy.steps,
    unresolved: copy.unresolved,
    stepCount: copy.stepCount,
    startedAt: copy.startedAt,
    deadlineAt: copy.deadlineAt,
    offline: copy.offline === true,
  });
  // Secrets are never stored with the run: re-read them so that they stay redacted.
  for (const name of copy.secretNames ?? []) {
    const value = options.ports.secrets?.get(name);
    if (value !== undefined) state.redactor.addSecret(name, value);
  }
  const nowMs = state.clock.now();
  const sinceMs = copy.waiting ? Date.parse(copy.waiting.since) : Number.NaN;
  const record: StepRecord = {
    id: step.id,
    action: step.action,
    status: "succeeded",
    attempts: 1,
    startedAt: Number.isNaN(sinceMs) ? new Date(nowMs).toISOString() : copy.waiting!.since,
    durationMs: Number.isNaN(sinceMs) ? 0 : Math.max(0, nowMs - sinceMs),
    prompt: copy.waiting?.prompt ?? state.render(step.prompt),
    output: reply,
    outputVariable: step.variable,
  };
  state.setVariable(step.variable, reply);
  state.setVariable("user_input", reply);
  state.lastOutput = reply;
  state.record(record);
  return drive(state, state.following(step));
}
