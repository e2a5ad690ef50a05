/**
 * Every port the engine and the application services talk through: the engine's (LLM, HTTP
 * tools, clock, secrets) and the runtime's storage and messaging (sessions, documents,
 * history, the analysis publisher). Adapters in lib/adapters implement them; one wiring
 * module per function chooses which.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { RunState, RunStatus, StepError, SuspendedRun, TokenUsage } from "./core/run.ts";
import type { ConversationTurn } from "./core/conversation.ts";
import type { ExecutionRecord } from "./core/execution-record.ts";
import type { HttpMethod, Profile } from "./mova/schema.ts";
import type { AggregateKey, ProtocolAggregate } from "./analysis/aggregate.ts";
import type { VersionScores } from "./analysis/scores.ts";

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
  /**
   * The session's durable run that has not finished: waiting for the next message, or still
   * running (in the runner). Its checkpoint says which. (`suspended` is how sessions kept
   * their waiting run before runs were durable; such a run is moved to a checkpoint when the
   * next message comes.)
   */
  runExecutionId?: string;
  /**
   * How many of the replies the run `runExecutionId` has shown (its state's `shown.count`)
   * are in `conversation`: the rest, shown by legs the runner advanced, join it at the next
   * message. Absent: none.
   */
  runRepliesRemembered?: number;
  /**
   * The request that handles a message now (epoch ms expiry): taken, by a versioned write,
   * before any step runs, so a concurrent message is refused having called nothing.
   */
  lease?: { owner: string; expiresAt: number };
  /**
   * The conversation (user messages and replies shown, oldest first), bounded by turns and
   * bytes (lib/core/conversation.ts); it lives and expires with the session.
   */
  conversation?: ConversationTurn[];
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
  /** One version as stored (versions are immutable): a durable run goes on with the version it started with. */
  getVersion(tenant: string, name: string, version: number): Promise<StoredDocument | undefined>;
  list(tenant: string): Promise<Array<Omit<StoredDocument, "source">>>;
  /** Every stored version of a document, oldest first (empty when there is none). */
  listVersions(tenant: string, name: string): Promise<Array<Omit<StoredDocument, "source">>>;
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

/** One child run of an execution, as GET /executions/{id}/children lists it (its own record has the rest). */
export type ChildSummary = Pick<
  ExecutionRecord,
  | "executionId"
  | "protocol"
  | "status"
  | "startedAt"
  | "finishedAt"
  | "durationMs"
  | "error"
  | "outcome"
  | "parentStep"
  | "parentVisit"
  | "itemIndex"
>;

export interface ChildPage {
  items: ChildSummary[];
  /** Pass as `cursor` for the next children; absent after the last. */
  cursor?: string;
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
  /**
   * The recorded children of an execution (its `call` and `foreach` runs, each an execution
   * with `parentExecutionId`), by parent step id, then the step's visit, then the item; a
   * page at a time (PageQuery: limit 1..100, default 20). Undefined when the tenant has no
   * such execution. A child record written with putExecution is linked to its parent there.
   */
  listChildren(tenant: string, executionId: string, query?: PageQuery): Promise<ChildPage | undefined>;
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

/** A message on the runs queue: the runner advances this run. */
export interface RunMessage {
  tenant: string;
  executionId: string;
}

/**
 * What controls runs beside their checkpoints (Redis): the schedule of runs to look at again
 * (a sorted set by time: waits that end, event timeouts, runs handed to the runner that might
 * be lost), the cancel requests a runner polls, and the one-time claims of signed callbacks.
 * An unreachable store is StoreUnavailableError `run_store_unavailable`.
 */
export interface RunControlStore {
  /** Looks at the run at `atMs` (epoch ms), replacing an earlier schedule of it. */
  schedule(message: RunMessage, atMs: number): Promise<void>;
  /** Up to `limit` runs scheduled at or before `nowMs`, earliest first (they stay scheduled). */
  due(nowMs: number, limit: number): Promise<Array<{ message: RunMessage; atMs: number }>>;
  unschedule(message: RunMessage): Promise<void>;
  /** Marks the run to be cancelled (kept `ttlMs`); the one advancing it stops. */
  requestCancel(message: RunMessage, ttlMs: number): Promise<void>;
  cancelRequested(message: RunMessage): Promise<boolean>;
  /** True the first time `key` is claimed (kept `ttlMs`); false when it was claimed already. */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  /** Gives a claim back (the action it guarded did not happen). */
  unclaim(key: string): Promise<void>;
}

/** The runs queue (SQS): hands a run to the runner. Throws when the message could not be sent. */
export interface RunQueue {
  enqueue(message: RunMessage, options?: { delaySeconds?: number }): Promise<void>;
}

// A run's live events (GET /executions/{id}/events).

/**
 * What a run's followers see, in the order it happened. `status`: the run started, resumed,
 * finished or suspended (any status but `running` ends a follow); `step_started` as a step is
 * entered; `step_finished` with the step's redacted record once its checkpoint is written;
 * `token`: text a prompt step streamed (one or several tokens per event). `at` is ISO time.
 */
export type RunEvent =
  | { type: "status"; status: RunStatus; at: string; error?: StepError }
  | { type: "step_started"; stepId: string; action: string; visit: number; at: string }
  | { type: "step_finished"; step: ExecutionRecord["steps"][number]; at: string }
  | { type: "token"; stepId: string; delta: string; at: string };

/** A run event's id (a Redis stream entry id): `<ms>-<sequence>`. */
export const RUN_EVENT_ID = /^\d{1,20}-\d{1,20}$/;

/** An event as the stream keeps it: `id` orders it and is what a follower resumes after. */
export interface StoredRunEvent {
  id: string;
  event: RunEvent;
}

/**
 * A bounded stream of events per run (Redis): each append keeps the run's last
 * RUN_EVENTS_MAX_LEN events and renews the stream's expiry (RUN_EVENTS_TTL_SECONDS). Tenants
 * are apart: a run's events are read with the tenant they were written with. An unreachable
 * store is StoreUnavailableError `run_events_unavailable`.
 */
export interface RunEventStream {
  /** Appends events in their order, in one round trip; answers their ids. */
  append(tenant: string, executionId: string, events: readonly RunEvent[]): Promise<string[]>;
  /**
   * The events after `after` (an id; the stream's oldest kept event when absent), oldest
   * first, at most `limit` (default 100). MovaError `invalid_event_id` for a malformed id.
   */
  read(
    tenant: string,
    executionId: string,
    options?: { after?: string; limit?: number },
  ): Promise<StoredRunEvent[]>;
}

export interface EventPublisher {
  /** Publishes one finished execution to the analysis queue. Throws when it could not. */
  publishExecution(record: ExecutionRecord): Promise<void>;
}

// The engine's ports.

export interface ChatMessage {
  /** `tool`: the result of one of the model's tool calls (`toolCallId` says which). */
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  /** `assistant`: the tool calls the model made in this message. */
  toolCalls?: LlmToolCall[];
  /** `tool`: the call this message answers. */
  toolCallId?: string;
}

/** A function the model may call (OpenAI function calling). */
export interface LlmToolDefinition {
  /** Letters, digits, `_` and `-`, at most 64 long. */
  name: string;
  description?: string;
  /** A JSON Schema of the arguments (an object schema). */
  parameters: Record<string, unknown>;
}

/** A call the model asked for: `arguments` is the JSON text the model wrote (it may not parse). */
export interface LlmToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** Structured output: the answer must be JSON matching `schema` (OpenAI `response_format` json_schema). */
export interface LlmResponseFormat {
  /** A name for the schema (letters, digits, `_` and `-`). */
  name: string;
  schema: Record<string, unknown>;
  /** Ask the provider to enforce the schema (only for schemas its strict mode accepts). */
  strict: boolean;
}

export interface LlmRequest {
  messages: ChatMessage[];
  responseFormat?: LlmResponseFormat;
  /** Functions the model may call; its answer then may be `toolCalls` instead of text. */
  tools?: LlmToolDefinition[];
  /**
   * Streams the answer (`stream: true`, usage included): called with each piece of text as it
   * arrives. The response is the same as without streaming. A retried attempt streams anew.
   */
  onDelta?: (delta: string) => void;
  model?: string;
  temperature?: number;
  maxTokens?: number;
  timeoutMs?: number;
}

export interface LlmResponse {
  /** The answer's text; may be empty when the model answered with `toolCalls`. */
  text: string;
  /** The functions the model called, when it did (never from the offline model). */
  toolCalls?: LlmToolCall[];
  model: string;
  usage?: TokenUsage;
  /**
   * US dollars this call cost, from the adapter's price table (lib/core/cost.ts); absent when
   * the table has no price for the model (unknown, not free).
   */
  costUsd?: number;
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

/**
 * Each tenant's secrets: a run gets the view of the tenant that owns its document, read
 * before the run starts (the engine reads secrets synchronously), so no document reaches
 * another tenant's values. A store that cannot be read fails with `secrets_unavailable` (503).
 */
export interface TenantSecretsPort {
  forTenant(tenant: string): Promise<SecretsPort>;
}

export interface EnginePorts {
  llm: LlmPort;
  tools: ToolPort;
  clock?: Clock;
  secrets?: SecretsPort;
  /** For retry jitter; `Math.random` by default. */
  random?: () => number;
}

// The analysis's stores: the day buckets and markers of the patterns table, the analysis
// runs, and the history reads only the batch analysis makes.

export interface DayBucketKey extends AggregateKey {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
}

export interface StoredBucket {
  key: DayBucketKey;
  aggregate: ProtocolAggregate;
  version: number;
  updatedAt: string;
  /** Epoch ms of the last merge by the SQS path, if any. */
  streamMergedAt?: number;
  /** The tokens of the last writes (to settle a write whose answer was lost). */
  writeTokens: string[];
}

export interface ExecutionMarker {
  executionId: string;
  /** Epoch ms of the claim. */
  at: number;
  /** `stream` or `batch:<runId>`. */
  by: string;
}

export interface ClaimResult {
  claimed: string[];
  /** Already claimed by someone (a redelivery, or the batch got there first). */
  duplicates: string[];
  /** The claim could not be written (DynamoDB unavailable): neither claimed nor counted. */
  failed: Array<{ executionId: string; error: unknown }>;
}

export interface WindowAggregate {
  /** The key's version's merge, or every version's when the key names none. */
  aggregate: ProtocolAggregate;
  /** Days that held data. */
  days: number;
  /** Each document version's merge over the window, oldest version first. */
  versions: ProtocolAggregate[];
}

export interface PatternStore {
  /** Claims each execution's marker; only claimed executions may be counted. */
  claimExecutions(
    key: AggregateKey,
    executions: Array<{ executionId: string; day: string }>,
    by: string,
  ): Promise<ClaimResult>;
  /** Undoes claims whose merge failed, so that a redelivery counts them. */
  releaseClaims(key: AggregateKey, executionIds: string[]): Promise<void>;
  /** The markers that exist among `executionIds`. */
  readMarkers(key: AggregateKey, executionIds: string[]): Promise<Map<string, ExecutionMarker>>;
  /**
   * Adds `delta` into the day bucket (created when missing), re-reading and retrying on a
   * version conflict. `source` says which path wrote (the batch's repair rule reads it).
   */
  mergeIntoBucket(
    key: DayBucketKey,
    delta: ProtocolAggregate,
    source: "stream" | "batch",
  ): Promise<{ version: number }>;
  readBucket(key: DayBucketKey): Promise<StoredBucket | undefined>;
  /** Writes `aggregate` as the bucket if its version is still `expectedVersion` (0: absent). False on a conflict. */
  replaceBucket(key: DayBucketKey, aggregate: ProtocolAggregate, expectedVersion: number): Promise<boolean>;
  /**
   * The merge of the day buckets from `fromDay` to `toDay` inclusive (of the key's version, or of
   * every version); undefined when none holds data.
   */
  readWindow(key: AggregateKey, fromDay: string, toDay: string): Promise<WindowAggregate | undefined>;
  /** Each day bucket (of every version) from `fromDay` to `toDay`, unmerged: what a breakdown by day reads. */
  readBuckets(
    key: AggregateKey,
    fromDay: string,
    toDay: string,
  ): Promise<Array<{ day: string; aggregate: ProtocolAggregate }>>;
  /** The tenant's protocols that have any bucket, at most `limit` (default 200). */
  listProtocols(tenant: string, limit?: number): Promise<AggregateKey[]>;
}

/** One score on an execution: a user's feedback, or an evaluator's judgement (source `evaluator:<id>`). */
export interface ExecutionScore {
  executionId: string;
  /** Who scored: `user` by default, any short name; `evaluator:<id>` is the evaluators'. */
  source: string;
  /** In [0, 1]. */
  score: number;
  label?: string;
  comment?: string;
  /** An evaluator's one-line reason. */
  reason?: string;
  /** ISO time it was given. */
  at: string;
}

/** Where a score belongs: the execution's protocol, document version and finish day (UTC). */
export interface ScoreKey extends AggregateKey {
  version: number;
  day: string;
}

/**
 * Scores on executions, one per execution and source: storing the same again replaces it, so
 * a repeated delivery changes nothing and every figure counts each score once.
 */
export interface ScoreStore {
  /** Stores the score (replacing that source's earlier one); says whether one was replaced. */
  put(key: ScoreKey, score: ExecutionScore): Promise<{ replaced: boolean }>;
  /** The execution's scores, every source. */
  list(key: ScoreKey, executionId: string): Promise<ExecutionScore[]>;
  /** Per document version, the moments of the scores of the executions finished from `fromDay` to `toDay`. */
  summarize(key: AggregateKey, fromDay: string, toDay: string): Promise<VersionScores[]>;
}

/** A tenant's spend per month (US dollars), added to atomically. */
export interface SpendCounter {
  /** Adds `usd` to the tenant's month (`YYYY-MM`); the month's total before and after. */
  add(tenant: string, month: string, usd: number): Promise<{ before: number; after: number }>;
}

/** How new sessions and executions of a document are split between its versions. */
export interface DocumentRouting {
  /** Version → share in percent (the shares add up to 100). */
  weights: Record<string, number>;
  /** Bumped on each write (a rollback writes only over the routing it judged). */
  revision: number;
  updatedAt: string;
  /** Set when the split returned to the base by itself. */
  rolledBack?: {
    at: string;
    /** The candidate that was found worse, and the split it had. */
    candidate: number;
    base: number;
    previousWeights: Record<string, number>;
    protocol: string;
    measure: string;
    pValue: number | null;
    reason: string;
  };
}

export interface RoutingStore {
  get(tenant: string, document: string): Promise<DocumentRouting | undefined>;
  /**
   * Writes the routing when the stored revision is still `expectedRevision` (0: none stored);
   * false when it changed.
   */
  put(
    tenant: string,
    document: string,
    routing: Omit<DocumentRouting, "revision">,
    expectedRevision: number,
  ): Promise<boolean>;
}

export const ANALYSIS_RUN_STATUSES = ["queued", "running", "succeeded", "failed"] as const;
export type AnalysisRunStatus = (typeof ANALYSIS_RUN_STATUSES)[number];

export interface AnalysisRunRequest {
  document?: string;
  protocol?: string;
  timeRangeDays: number;
}

export interface AnalysisRunFigures {
  daysTotal: number;
  daysDone: number;
  /** History records read (across the scope's filter). */
  executionsRead: number;
  /** Records in the run's tenant/document/protocol scope. */
  executionsInScope: number;
  /** Executions the stream had not counted, counted by this run. */
  reconciled: number;
  /** Executions whose event was never published, now counted and marked `published`. */
  pendingMarked: number;
  bucketsMerged: number;
  /** Day buckets that disagreed with the history and were replaced by the recomputation. */
  bucketsReplaced: number;
  /** Day buckets that disagreed but were still receiving writes: left for a later run. */
  bucketsUnsettled: number;
}

export interface AnalysisRun {
  runId: string;
  /** Absent for the scheduled run over all tenants. */
  tenant: string;
  status: AnalysisRunStatus;
  request: AnalysisRunRequest;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  progress?: AnalysisRunFigures;
  error?: { code: string; message: string };
}

export interface AnalysisRunStore {
  put(run: AnalysisRun): Promise<void>;
  get(tenant: string, runId: string): Promise<AnalysisRun | undefined>;
}

export interface PageQuery {
  cursor?: string;
  /** 1..100, default 20. */
  limit?: number;
}

/** The history store plus the reads of the batch analysis (not on the HistoryStore port). */
export interface AnalysisHistoryStore extends HistoryStore {
  /**
   * Executions that finished on `day` (`YYYY-MM-DD`, UTC), across tenants, newest first; with
   * `tenant`, only that tenant's (filtered by the store: no other tenant's record is returned).
   */
  queryByDay(day: string, query?: PageQuery & { tenant?: string }): Promise<ExecutionPage>;
  /** Like queryByDay, only those whose event was never published (`analysis: "pending"`). */
  listPending(day: string, query?: PageQuery): Promise<ExecutionPage>;
}

// Idempotency of requests and trigger events (Powertools idempotency on DynamoDB).

/** What callers accept as a key: 1-255 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** Who asks: each scope has its own keys (the API's "x" is not the trigger's "x"). */
export type IdempotencyScope = "api" | "trigger";

export interface IdempotentResponse {
  status: number;
  body: unknown;
}

export interface IdempotentRequest {
  scope: IdempotencyScope;
  tenant: string;
  key: string;
  /** What a retry must repeat exactly (canonical JSON: key order does not matter). */
  request: unknown;
}

export interface IdempotentOutcome {
  /** True: the key had already run and `response` is the one stored then. */
  replayed: boolean;
  response: IdempotentResponse;
}

export interface Idempotency {
  /**
   * Runs `work` once for the key. Throws MovaError `idempotency_in_progress` or `idempotency_key_reused` (in progress, or another
   * request), StoreUnavailableError `history_unavailable` when the claim cannot be made or
   * read, or what `work` threw (after giving the key back).
   */
  run(
    request: IdempotentRequest,
    work: () => Promise<IdempotentResponse>,
    logger: Pick<Logger, "warn">,
  ): Promise<IdempotentOutcome>;
}

/**
 * One span of a run's trace, as plain data: derived from what a run reports (its step
 * records, redacted), never from the engine's internals. Times are epoch ms.
 */
export interface TraceSpan {
  name: string;
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean>;
  /** A failed step or call: the span's status is an error with this message. */
  error?: string;
  children: TraceSpan[];
}

/** Where a run's traces go (an OTLP endpoint); absent: runs export none. */
export interface RunTraceExporter {
  /** Queues a trace (a root span and its descendants) for export; never throws, never waits. */
  export(root: TraceSpan): void;
  /** Sends what is queued, waiting at most the exporter's bound; never throws. */
  flush(): Promise<void>;
}
