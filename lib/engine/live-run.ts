/** The live state of one run (or one leg of it, in this call): everything its steps read and mutate. */
import { setMaxListeners } from "node:events";
import type { MovaDocument, Protocol, Step } from "../mova/schema.ts";
import { renderTemplate, type Resolver } from "../mova/placeholders.ts";
import type { Clock, EnginePorts } from "../ports.ts";
import {
  RUN_STATE_PATH_TAIL,
  type RunResult,
  type RunState,
  type RunStatus,
  type ShownReplies,
  type StepRecord,
} from "../core/run.ts";
import { SecretRedactor } from "./redact.ts";
import { type ConversationTurn, showReply } from "../core/conversation.ts";
import { toolIdempotencyKey } from "./idempotency-key.ts";
import type { CheckpointHook, RunContext, RunOptions } from "./run-options.ts";
import { createResolver } from "./variables.ts";
import { followingStepId } from "../mova/steps.ts";
import { realClock } from "./real-clock.ts";
import { RunStop, type StopKind } from "./run-stop.ts";
import { FINISHED, type Transition } from "./flow.ts";

const DEFAULT_MAX_STEPS = 200;
const MAX_TIMER_MS = 2_147_483_647;

/** What a run carries from before this call. */
export interface Carried {
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
  shown?: ShownReplies | undefined;
}

/** Runs a protocol of the document as a child of this run (set by the run loop, drive.ts). */
export type ChildRunner = (
  parent: LiveRun,
  protocol: Protocol,
  variables: Record<string, unknown>,
  executionId: string | undefined,
) => Promise<RunResult>;

/** What a child run inherits from its parent's options. */
export type ChildContext = Omit<RunOptions, "protocol" | "variables" | "deadlineMs"> & RunContext;

export interface Mode {
  /** advanceRun: results carry the RunState, cancellation is status `cancelled`. */
  durable: boolean;
  keepSteps: boolean;
  checkpoint?: CheckpointHook | undefined;
  shouldPause?: (() => boolean) | undefined;
  /** The state the caller holds as saved (the one the run goes on from). */
  saved?: RunState | undefined;
}

/** Everything one run (or one leg of it, in this call) mutates. */
export class LiveRun {
  readonly document: MovaDocument;
  readonly protocol: Protocol;
  readonly stepIndex = new Map<string, number>();
  readonly ports: EnginePorts;
  readonly clock: Clock;
  readonly random: () => number;
  readonly redactor = new SecretRedactor();
  /** Placeholders and conditions: everything a run can read but secrets. */
  readonly resolve: Resolver;
  /** A tool request's headers, authentication and parameters: the run's variables and its tenant's secrets. */
  readonly resolveWithSecrets: Resolver;
  readonly variables: Record<string, unknown>;
  readonly path: string[];
  readonly steps: StepRecord[];
  readonly unresolved: string[];
  readonly visits: Record<string, number>;
  /** This leg's replies (the run's result); `shown` counts them over every leg. */
  readonly replies: string[] = [];
  shown: ShownReplies | undefined;
  readonly startedAt: string;
  readonly legStartedMs: number;
  readonly maxSteps: number;
  readonly deadlineAt: number;
  /** Epoch ms when this call's budget runs out, if it has one. */
  readonly budgetAt: number | undefined;
  readonly executionId: string | undefined;
  /** The session's conversation before this run, for prompt steps' memory. */
  readonly conversation: ConversationTurn[] | undefined;
  /** The run's token sink (RunOptions.onToken), if it streams. */
  readonly onToken: ((stepId: string, delta: string) => void) | undefined;
  readonly onStep: ((record: StepRecord) => void) | undefined;
  readonly onStepStart: RunOptions["onStepStart"];
  readonly mode: Mode;
  /** The options a child run (`call`, `foreach`) starts from. */
  readonly context: ChildContext;
  /** 0 for a run, its parent's depth + 1 for a child. */
  readonly callDepth: number;
  /** Set by the run loop before the first step. */
  runChild: ChildRunner | undefined;
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

  constructor(options: ChildContext, protocol: Protocol, carried: Carried, mode: Mode, callDepth = 0) {
    this.context = options;
    this.callDepth = callDepth;
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
    this.shown = carried.shown;
    this.lastOutput = outputOf(this.variables, carried.outputFrom);
    this.legStartedMs = this.clock.now();
    this.startedAt = carried.startedAt;
    this.maxSteps = options.maxSteps ?? protocol.max_steps ?? DEFAULT_MAX_STEPS;
    this.deadlineAt = carried.deadlineAt;
    this.budgetAt = options.budgetMs === undefined ? undefined : this.legStartedMs + options.budgetMs;
    this.executionId = options.executionId;
    this.conversation = options.conversation;
    this.onToken = options.onToken;
    this.onStep = options.onStep;
    this.onStepStart = options.onStepStart;
    this.mode = mode;
    this.saved = mode.saved;
    const readable = {
      variables: this.variables,
      session: options.session,
      sessionDefaults: options.document.session?.data,
      profile: options.profile,
      intent: options.intent,
      now: () => this.clock.now(),
      executionId: options.executionId,
      callbackUrl: options.callbackUrl,
    };
    // Secrets reach tool requests only (MOVA's `secret_not_allowed_here`, enforced here too for
    // a document that was never validated): elsewhere `{secrets.X}` has no value.
    this.resolve = createResolver(readable);
    this.resolveWithSecrets = createResolver({
      ...readable,
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

  /**
   * A prompt, system message or template, with any secret a tool echoed into a variable
   * already redacted: a secret must not reach the model, which could spell it out in a form
   * redaction does not know.
   */
  render(template: string): string {
    const rendered = renderTemplate(template, this.resolve);
    this.noteUnresolved(rendered.unresolved);
    return this.redactor.empty ? rendered.text : this.redactor.redactString(rendered.text);
  }

  noteUnresolved(paths: readonly string[]): void {
    for (const path of paths) if (!this.unresolved.includes(path)) this.unresolved.push(path);
  }

  step(id: string): Step | undefined {
    const index = this.stepIndex.get(id);
    return index === undefined ? undefined : this.protocol.steps[index];
  }

  /**
   * The step after `step` in the flow: its `next_step`, else the next in the list (none in
   * the classes form's explicit flow: the run ends).
   */
  following(step: Step): string | undefined {
    if (step.next_step !== undefined) return step.next_step;
    const index = this.stepIndex.get(step.id);
    return index === undefined ? undefined : followingStepId(this.protocol, index);
  }

  /** Counts a step as entered: the step budget, the path, its visits. */
  enter(step: Step): void {
    this.stepCount += 1;
    this.path.push(step.id);
    const visit = (this.visits[step.id] ?? 0) + 1;
    this.visits[step.id] = visit;
    if (!this.onStepStart) return;
    try {
      this.onStepStart({ id: step.id, action: step.action, visit });
    } catch {
      // An observer (live events) must not change the run's outcome.
    }
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

  /** Shows `text` to the user: a reply of this leg, and counted in the run's state. */
  reply(text: string): void {
    this.replies.push(text);
    this.shown = showReply(this.shown, text);
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
    if (this.shown !== undefined) state.shown = this.shown;
    if (transition.kind === "next") state.next = transition.stepId;
    else if (transition.pause) {
      state.next = transition.pause.step.id;
      state.pause = transition.pause.pause;
    } else if (transition.suspend) {
      const { step, prompt, since, failedReplies } = transition.suspend;
      state.next = step.id;
      state.waiting = {
        prompt,
        since,
        variable: step.variable,
        ...(failedReplies !== undefined && { failedReplies }),
      };
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
