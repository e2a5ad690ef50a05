/**
 * What a run is, as plain data: its result, its step records, and the state it can be
 * resumed from. The engine produces these; history, analysis, the API and the CLI read them.
 */
import { createHash } from "node:crypto";

/**
 * `running`: the run stopped between two steps and goes on from its state (a checkpoint);
 * `cancelled`: stopped on request. The others as MOVA.md says.
 */
export type RunStatus = "completed" | "failed" | "waiting_input" | "timed_out" | "running" | "cancelled";
type StepStatus = "succeeded" | "failed" | "skipped";

/** Machine-readable failure of a step or a run (`llm_error`, `tool_http_status`, `timeout`, `max_steps`, …). */
export interface StepError {
  code: string;
  message: string;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** A model of a prompt step's fallback list that failed (after the step's retries on it). */
export interface ModelFailure {
  /** The model asked for (`default`: the deployment's default model). */
  model: string;
  attempts: number;
  error: StepError;
}

/** One call the model made from a prompt step (function calling). */
export interface ToolCallRecord {
  /** The tool round it belongs to, from 1. */
  round: number;
  /** The model's id for the call. */
  callId: string;
  /** The document tool called. */
  tool: string;
  /** The arguments the model gave (parsed when they parse), secrets redacted. */
  arguments: unknown;
  /** `invalid`: the arguments did not match the tool's schema; the tool was not called. */
  status: "succeeded" | "failed" | "invalid";
  attempts: number;
  durationMs: number;
  httpStatus?: number;
  error?: StepError;
}

export interface StepRecord {
  id: string;
  action: string;
  status: StepStatus;
  /** Tries made, the first included; 0 for a skipped step. */
  attempts: number;
  /** ISO time. */
  startedAt: string;
  durationMs: number;
  error?: StepError;
  /** The value the step stored (prompt reply, tool body, input), secrets redacted. */
  output?: unknown;
  /** The variable the output was stored in. */
  outputVariable?: string;
  /** `prompt` and `input` steps: the rendered prompt, secrets redacted. */
  prompt?: string;
  /** `prompt` steps: the model that answered. */
  model?: string;
  /** `prompt` steps: the tokens of every model call the step made (repairs and tool rounds included). */
  usage?: TokenUsage;
  /**
   * `prompt` steps: what those calls cost in US dollars, from the configuration's price table
   * (LLM_PRICES); absent when a model's price is unknown (never a zero for "unknown").
   */
  costUsd?: number;
  /** `prompt` steps with a list of models: each model that failed, in the order tried. */
  modelFailures?: ModelFailure[];
  /** `prompt` steps with `tools`: every call the model made, in order of rounds and calls. */
  toolCalls?: ToolCallRecord[];
  offline?: boolean;
  /** `tool_api` steps. */
  toolId?: string;
  httpStatus?: number;
  /** `condition` steps: which way the flow went. */
  branch?: "then" | "else";
  /** `parallel` steps: the ids of the branches. */
  branches?: string[];
  /** `call` and `foreach` steps: each child run, in the order of the items. */
  children?: ChildRunRecord[];
}

/** One child run of a `call` or `foreach` step, as its parent's step record keeps it. */
export interface ChildRunRecord {
  protocol: string;
  /** `foreach`: the item's position in the list. */
  index?: number;
  status: RunStatus;
  durationMs: number;
  /**
   * Derived from the parent's execution id (absent when the run has none): the id of the
   * child's own history item (see childExecutionId).
   */
  executionId?: string;
  error?: StepError;
  /** The child's steps in order (their ids); its step records are handed out apart (ChildRunEnded). */
  path: string[];
}

/**
 * A child run that ended, as the engine hands it to its caller (RunOptions.onChildRun) so
 * that the child can be recorded as an execution of its own: the child's whole result (its
 * step records, redacted) and where it sits in its parent.
 */
export interface ChildRunEnded {
  executionId: string;
  parentExecutionId: string;
  /** The parent's `call` or `foreach` step, and that step's visit. */
  parentStep: string;
  parentVisit: number;
  /** `foreach`: the item's position in the list. */
  index?: number;
  result: RunResult;
}

/** A step id as it may stand in an execution id: itself when URL-safe, else a short hash of it. */
const URL_SAFE_STEP_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The execution id of a child run: `<parent id>~<step>.<visit>` for `call`, and `~<index>`
 * after it for `foreach`. URL-safe (a path segment as it is), and the same every time the
 * parent's step visit runs again, so a step run again after a crash makes the same ids.
 * A step id that is not URL-safe stands as `h` and 16 hex digits of its SHA-256.
 */
export function childExecutionId(
  parentExecutionId: string,
  stepId: string,
  visit: number,
  index: number | undefined,
): string {
  const step = URL_SAFE_STEP_ID.test(stepId)
    ? stepId
    : `h${createHash("sha256").update(stepId).digest("hex").slice(0, 16)}`;
  return `${parentExecutionId}~${step}.${visit}${index === undefined ? "" : `~${index}`}`;
}

/** How many of the last step ids a RunState keeps: its size must not grow with the steps done. */
export const RUN_STATE_PATH_TAIL = 50;

/**
 * A run between any two steps, as plain JSON: what a checkpoint holds after every step, and
 * what the run goes on from (in this process or another). It does not grow with the number of
 * steps done: step records are handed to the caller as each step finishes (the engine's
 * `onStep` and `checkpoint` hooks), and only the path's recent tail is kept. Secrets are never
 * in it (values are redacted; only their names are kept, to be re-read).
 */
export interface RunState {
  v: 2;
  protocol: string;
  /** `running` or `waiting_input` while the run can go on; a finished status once it ended. */
  status: RunStatus;
  /** `running`: the step to run next; `waiting_input`: the `input` step waited on. */
  next?: string;
  variables: Record<string, unknown>;
  /** The last RUN_STATE_PATH_TAIL step ids entered; the whole path is the step records' ids. */
  path: string[];
  /** Steps entered so far (the budget `max_steps` counts). */
  stepCount: number;
  /** Times each step was entered; the visit number in a tool call's Idempotency-Key. */
  visits: Record<string, number>;
  unresolved: string[];
  startedAt: string;
  /**
   * Epoch ms: the start plus the protocol's `deadline_ms` (default 24 h). Never a request's
   * budget: time spent waiting for a person or an event counts only against this.
   */
  deadlineAt: number;
  offline: boolean;
  /** The names (never the values) of the secrets the run read; re-read on resume to keep them redacted. */
  secretNames: string[];
  /**
   * Where the run's output (the last step output) is, without copying it: the variable that
   * holds it, or for a `parallel` step each branch's variable by branch id.
   */
  outputFrom?: string | Record<string, string>;
  /** `waiting_input`: the rendered prompt waited on (secrets redacted), since when (ISO), and the variable. */
  waiting?: { prompt: string; since: string; variable: string; failedReplies?: number };
  /**
   * `running` at a `wait` or `wait_event` step (`next`): what it waits for, and `wakeAt`
   * (epoch ms), when it must be advanced even if nothing arrives (the wait's end, the event's
   * timeout, or else the run's deadline). No compute runs meanwhile.
   */
  pause?: RunPause;
  /**
   * The replies the run has shown to the user (see ShownReplies): a session remembers those
   * it has not yet at its next message, so replies of legs the runner advanced join its
   * conversation too.
   */
  shown?: ShownReplies;
  /** A finished run: its final output. */
  output?: unknown;
  /** A finished run: why it failed, timed out or was cancelled. */
  error?: StepError;
  /**
   * Not the engine's: the step records (and step ids) of the leg that wrote this checkpoint
   * and that its history record may not hold yet, so that a process dying mid-leg loses none.
   * `from`/`pathFrom`: how many step records and path ids the history record held when the
   * leg began. Bounded in size (the durable-run service stops carrying them past its limit).
   */
  unrecorded?: UnrecordedSteps;
}

/**
 * The replies a run has shown (prompt replies, the input prompts and refusals it waited on,
 * its end output): how many in all, and the last of them, oldest first, within a few KiB
 * (lib/core/conversation.ts: showReply), so a run's state stays small however long it talks.
 */
export interface ShownReplies {
  count: number;
  last: string[];
}

/** See RunState.unrecorded. */
export interface UnrecordedSteps {
  from: number;
  pathFrom: number;
  records: StepRecord[];
  path: string[];
}

/** What a run paused at a `wait` or `wait_event` step waits for (see RunState.pause). */
export type RunPause =
  | { kind: "wait"; since: string; wakeAt: number }
  | { kind: "event"; event: string; since: string; wakeAt: number; timeoutAt?: number };

/**
 * A run suspended on an `input` step, as a session keeps it between messages: plain JSON with
 * every step record so far (an interactive run is short). A RunState is its generalisation,
 * able to stop between any two steps without carrying the records.
 */
export interface SuspendedRun {
  v: 1;
  protocol: string;
  /** The `input` step waiting for the user's reply. */
  stepId: string;
  variables: Record<string, unknown>;
  path: string[];
  steps: StepRecord[];
  stepCount: number;
  unresolved: string[];
  startedAt: string;
  /**
   * Epoch ms: the start plus the protocol's `deadline_ms` (default 24 h). Runs suspended
   * before `visits` was kept may hold a request's deadline here; theirs is recomputed.
   */
  deadlineAt?: number;
  offline: boolean;
  /** The names (never the values) of the secrets the run read; re-read on resume to keep them redacted. */
  secretNames?: string[];
  /** The rendered prompt waited on (secrets redacted) and when the wait began (ISO). */
  waiting?: { prompt: string; since: string; failedReplies?: number };
  /** Times each step was entered (see RunState). */
  visits?: Record<string, number>;
}

export interface RunResult {
  status: RunStatus;
  protocol: string;
  /** The final output: the `end` step's rendered template, else the last step's output. */
  output: unknown;
  /** The run's own variables, secrets redacted. */
  variables: Record<string, unknown>;
  steps: StepRecord[];
  /**
   * The ids of the steps entered, in order (a step entered twice appears twice). advanceRun:
   * the state's recent tail (RUN_STATE_PATH_TAIL ids), then this call's steps.
   */
  path: string[];
  /** Placeholders that had no value and were left as written. */
  unresolved: string[];
  /** Texts meant for the user, in order: prompt replies, the input prompt waited on, the end output. */
  replies: string[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** True when any prompt step was answered by the offline model. */
  offline: boolean;
  /** Why the run failed or timed out. */
  error?: StepError;
  /** Present when status is `waiting_input`. */
  waitingFor?: { stepId: string; prompt: string; variable: string };
  /** advanceRun, status `running`: the `wait` or `wait_event` step the run is paused at. */
  pausedAt?: { stepId: string; pause: RunPause };
  /** Present when status is `waiting_input` (runProtocol, resumeRun): resume from this. */
  suspended?: SuspendedRun;
  /**
   * advanceRun: the run's state after this call, what the last checkpoint holds (when the
   * checkpoint hook failed, the last one it accepted); advance it again when `running`.
   */
  state?: RunState;
  /** advanceRun, status `running`: what the checkpoint hook threw (the run stopped there). */
  checkpointError?: unknown;
}
