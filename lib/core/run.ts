/**
 * What a run is, as plain data: its result, its step records, and the suspended run it can be
 * resumed from. The engine produces these; history, analysis, the API and the CLI read them.
 */

export type RunStatus = "completed" | "failed" | "waiting_input" | "timed_out";
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
  /** `prompt` steps. */
  model?: string;
  usage?: TokenUsage;
  offline?: boolean;
  /** `tool_api` steps. */
  toolId?: string;
  httpStatus?: number;
  /** `condition` steps: which way the flow went. */
  branch?: "then" | "else";
  /** `parallel` steps: the ids of the branches. */
  branches?: string[];
}

/** A run suspended on an `input` step: plain JSON, stored in the session and resumed from. */
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
  /** Epoch ms; absent when the run has no deadline. */
  deadlineAt?: number;
  offline: boolean;
  /** The names (never the values) of the secrets the run read; re-read on resume to keep them redacted. */
  secretNames?: string[];
  /** The rendered prompt waited on (secrets redacted) and when the wait began (ISO). */
  waiting?: { prompt: string; since: string };
}

export interface RunResult {
  status: RunStatus;
  protocol: string;
  /** The final output: the `end` step's rendered template, else the last step's output. */
  output: unknown;
  /** The run's own variables, secrets redacted. */
  variables: Record<string, unknown>;
  steps: StepRecord[];
  /** The ids of the steps entered, in order (a step entered twice appears twice). */
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
  /** Present when status is `waiting_input`: resume from this. */
  suspended?: SuspendedRun;
}
