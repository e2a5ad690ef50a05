/**
 * Every port the engine and the application services talk through: the engine's (LLM, HTTP
 * tools, clock, secrets) and the runtime's storage and messaging (sessions, documents,
 * history, the analysis publisher). Adapters in lib/adapters implement them; one wiring
 * module per function chooses which.
 */
import type { RunState, SuspendedRun, TokenUsage } from "./run.ts";
import type { ExecutionRecord } from "./execution-record.ts";
import type { HttpMethod, Profile } from "../mova/schema.ts";

/** What a session store answers when a write lost a race (the version it expected changed): HTTP 409. */
export const SESSION_CONFLICT = "the session was changed by another request; retry with its new state";

/** A conversation's state. All of it lives in Redis, so any Lambda instance can serve the next message. */
export interface SessionState {
  sessionId: string;
  tenant: string;
  document: string;
  documentVersion: number;
  userId: string;
  data: Record<string, unknown>;
  profile?: Profile;
  /** The intent recognised last. */
  intent?: string;
  /** The run waiting for the user's reply, if any. */
  suspended?: SuspendedRun;
  /** The execution id of the suspended run (it keeps its id across messages). */
  suspendedExecutionId?: string;
  createdAt: string;
  updatedAt: string;
  /** ISO time; renewed on each write. */
  expiresAt: string;
  /** Bumped on each write; the optimistic-concurrency check compares it. */
  version: number;
}

export type NewSession = Omit<SessionState, "createdAt" | "updatedAt" | "expiresAt" | "version">;

export interface SessionStore {
  create(session: NewSession): Promise<SessionState>;
  get(tenant: string, sessionId: string): Promise<SessionState | undefined>;
  /**
   * Writes `next` when the stored version is still `expectedVersion` (checked and bumped in
   * one atomic step), renewing the TTL. Throws MovaError `session_conflict` otherwise, and
   * returns undefined when the session no longer exists.
   */
  update(
    tenant: string,
    sessionId: string,
    expectedVersion: number,
    next: Omit<SessionState, "version" | "updatedAt" | "expiresAt">,
  ): Promise<SessionState | undefined>;
  delete(tenant: string, sessionId: string): Promise<boolean>;
}

export interface StoredDocument {
  tenant: string;
  name: string;
  version: number;
  /** sha256 hex of the canonical JSON. */
  hash: string;
  /** The document as the client sent it (JSON). */
  source: unknown;
  updatedAt: string;
}

export interface DocumentStore {
  /** Stores a new version (1, 2, …); an identical document keeps its version. */
  put(tenant: string, name: string, source: unknown): Promise<StoredDocument>;
  get(tenant: string, name: string): Promise<StoredDocument | undefined>;
  list(tenant: string): Promise<Array<Omit<StoredDocument, "source">>>;
}

export interface ExecutionQuery {
  /** ISO times, inclusive. */
  from?: string;
  to?: string;
  status?: ExecutionRecord["status"];
  limit?: number;
  cursor?: string;
}

export interface ExecutionPage {
  items: ExecutionRecord[];
  cursor?: string;
}

export interface StepQuery {
  /** Where the previous page stopped (its `cursor`); the run's first step when absent. */
  cursor?: string;
  /** 1..100, default 25. */
  limit?: number;
}

/** Step records of one execution, in run order. */
export interface StepPage {
  steps: ExecutionRecord["steps"];
  /** Pass as `cursor` for the next steps; absent after the run's last step. */
  cursor?: string;
  /** How many step records the run has. */
  total: number;
}

/**
 * Store failures are StoreUnavailableError (lib/errors.ts); a query the store cannot run as
 * asked is MovaError `invalid_cursor`, `invalid_limit` or `invalid_range`.
 */
export interface HistoryStore {
  /**
   * Writes an execution with every step record, however long the run: a long run's step
   * records go to pages, all written before its summary. A finished execution is never
   * overwritten (conditional writes); writing the same record again is not a conflict.
   */
  putExecution(record: ExecutionRecord): Promise<void>;
  /** The execution's record; for a long run its summary (`stepCount` set: the steps are in getSteps). */
  getExecution(tenant: string, executionId: string): Promise<ExecutionRecord | undefined>;
  /**
   * The execution's step records in run order, a page at a time; undefined when the tenant
   * has no such execution. A cursor of another execution, or past the run's end, is MovaError
   * `invalid_cursor`; a limit out of range `invalid_limit`.
   */
  getSteps(tenant: string, executionId: string, query?: StepQuery): Promise<StepPage | undefined>;
  /** Newest first, from the time-range index. */
  queryExecutions(
    tenant: string,
    document: string,
    protocol: string,
    query: ExecutionQuery,
  ): Promise<ExecutionPage>;
  /** Sets `analysis` on a stored execution (pending → published once analysed). */
  markAnalysis(tenant: string, executionId: string, analysis: ExecutionRecord["analysis"]): Promise<void>;
}

/** A lease on a run: who advances it, until when (epoch ms). */
export interface RunLease {
  owner: string;
  expiresAt: number;
}

/** A run's checkpoint as stored: the state, its version (bumped by every write and lease take-over), the lease. */
export interface StoredRun {
  version: number;
  state: RunState;
  lease?: RunLease;
}

/**
 * Run checkpoints (Redis): one key per tenant and execution, expiring some time after the
 * run's deadline. Every change is one atomic compare-and-set on the version, so two workers on
 * one run never lose each other's writes. A state larger than MAX_RUN_STATE_BYTES is refused
 * with MovaError `state_too_large` and nothing is written; an unreachable store is
 * StoreUnavailableError `run_store_unavailable`.
 */
export interface RunCheckpointStore {
  /** Stores a new run's first state at version 1. MovaError `run_exists` when there is one. */
  create(tenant: string, executionId: string, state: RunState): Promise<StoredRun>;
  get(tenant: string, executionId: string): Promise<StoredRun | undefined>;
  /**
   * Replaces the state when the stored version is still `expectedVersion` (the lease kept) and
   * returns the new version. MovaError `run_conflict` when the version moved on (nothing
   * changed), `run_not_found` when there is no checkpoint.
   */
  write(tenant: string, executionId: string, expectedVersion: number, state: RunState): Promise<number>;
  /**
   * Takes the lease for `owner` until `now + ttlMs` when there is none, it expired, or `owner`
   * holds it. Taking it bumps the version, so a former holder's next write conflicts. Answers
   * the checkpoint with the lease, or undefined when another owner holds a live lease;
   * `run_not_found` when there is no checkpoint.
   */
  acquireLease(
    tenant: string,
    executionId: string,
    owner: string,
    ttlMs: number,
    now: number,
  ): Promise<StoredRun | undefined>;
  /** Extends `owner`'s lease to `now + ttlMs` (version unchanged); false when `owner` no longer holds it. */
  renewLease(
    tenant: string,
    executionId: string,
    owner: string,
    ttlMs: number,
    now: number,
  ): Promise<boolean>;
  /** Drops `owner`'s lease (version unchanged); false when `owner` did not hold it. */
  releaseLease(tenant: string, executionId: string, owner: string): Promise<boolean>;
}

export interface EventPublisher {
  /** Publishes one finished execution to the analysis queue. Throws when it could not. */
  publishExecution(record: ExecutionRecord): Promise<void>;
}

// The engine's ports.

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
  /**
   * Sent as the `Idempotency-Key` header (unless the tool's own headers set one): the same for
   * every try of one visit of one step of one execution, so a tool that honours it applies a
   * call repeated after a crash or a retry once.
   */
  idempotencyKey?: string;
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
