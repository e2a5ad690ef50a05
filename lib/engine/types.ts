/**
 * The engine's contract: what a run returns, what a suspended run is, and the ports the
 * engine talks through. Everything here is plain data or a small interface, so the same
 * engine runs in Lambda, in the local stack, in the CLI and in the tests.
 */
import type { HttpMethod, MovaDocument, Profile } from "../mova/schema.ts";

export type RunStatus = "completed" | "failed" | "waiting_input" | "timed_out";
export type StepStatus = "succeeded" | "failed" | "skipped";

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

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface LlmRequest {
  messages: ChatMessage[];
  model?: string;
  temperature?: number;
  maxTokens?: number;
  timeoutMs?: number;
}

export interface LlmResponse {
  text: string;
  model: string;
  usage?: TokenUsage;
  /** True when the offline model answered (no LLM configured). */
  offline?: boolean;
}

/** Errors thrown by ports carry a code and whether a retry may help. */
export class PortError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly status: number | undefined;
  constructor(
    code: string,
    message: string,
    options: { retryable?: boolean; status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PortError";
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.status = options.status;
  }
}

export interface LlmPort {
  readonly offline: boolean;
  complete(request: LlmRequest, signal?: AbortSignal): Promise<LlmResponse>;
}

/** A tool call with every template already rendered. */
export interface ToolRequest {
  toolId: string;
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  /** GET and DELETE: the query string parameters. */
  query?: Record<string, string>;
  /** POST, PUT, PATCH: the JSON body. */
  body?: unknown;
  timeoutMs?: number;
}

export interface ToolResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON when the response is JSON, else the text. */
  body: unknown;
}

export interface ToolPort {
  call(request: ToolRequest, signal?: AbortSignal): Promise<ToolResponse>;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** `secrets.NAME` values; nothing else of the environment is readable by a document. */
export interface SecretsPort {
  get(name: string): string | undefined;
}

export interface EnginePorts {
  llm: LlmPort;
  tools: ToolPort;
  clock?: Clock;
  secrets?: SecretsPort;
  /** For retry jitter; `Math.random` by default. */
  random?: () => number;
}

export interface RunContext {
  /** Session data, readable as `session.*`. */
  session?: Record<string, unknown>;
  /** The session user's profile, readable as `profile.*`. */
  profile?: Profile;
  /** The recognised intent name, readable as `intent`. */
  intent?: string;
}

export interface RunOptions extends RunContext {
  document: MovaDocument;
  protocol: string;
  variables?: Record<string, unknown>;
  ports: EnginePorts;
  /** Overrides the protocol's `max_steps`. */
  maxSteps?: number;
  /** Run deadline from the start, overriding the protocol's `deadline_ms`. */
  deadlineMs?: number;
  /** Called as each step finishes (the history records them). */
  onStep?: (record: StepRecord) => void;
  /** Cancels the run; it ends `failed` with code `cancelled`. */
  signal?: AbortSignal;
}

export interface ResumeOptions extends Omit<RunOptions, "protocol" | "variables"> {
  suspended: SuspendedRun;
  /** The user's reply to the `input` step waited on. */
  reply: string;
}
