/**
 * The runtime's storage and messaging ports. The API, analysis, batch and trigger functions
 * wire real adapters (Upstash Redis, DynamoDB, SQS) to these; the local stack wires the same
 * adapters to local endpoints.
 */
import type { SuspendedRun } from "../engine/types.ts";
import type { ExecutionRecord } from "../history/execution-record.ts";
import type { Profile } from "../mova/schema.ts";

/** A failure of a backing service (Redis, DynamoDB, SQS): the API answers 503 with this code. */
export class StoreUnavailableError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
    this.code = code;
  }
}

/** The stored version was not the expected one: someone else wrote first (HTTP 409). */
export class VersionConflictError extends Error {
  readonly code = "version_conflict";
  constructor(message = "the session was changed by another request") {
    super(message);
    this.name = "VersionConflictError";
  }
}

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
   * one atomic step), renewing the TTL. Throws VersionConflictError otherwise, and
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

export interface HistoryStore {
  /** Writes a finished execution; a finished execution is never overwritten (conditional write). */
  putExecution(record: ExecutionRecord): Promise<void>;
  getExecution(tenant: string, executionId: string): Promise<ExecutionRecord | undefined>;
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

export interface EventPublisher {
  /** Publishes one finished execution to the analysis queue. Throws when it could not. */
  publishExecution(record: ExecutionRecord): Promise<void>;
}

/** A query the store cannot run as asked (a malformed cursor, a limit or time range out of bounds): HTTP 400. */
export class InvalidQueryError extends Error {
  /** `invalid_cursor`, `invalid_limit` or `invalid_range`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "InvalidQueryError";
    this.code = code;
  }
}
