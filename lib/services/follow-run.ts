/**
 * Following a run live: what GET /executions/{id}/events sends, independent of how it is sent.
 * The events come from the run's stream, after the follower's last id (`Last-Event-ID`), read
 * again and again (the REST Redis has no blocking read): soon after an event, then less often
 * while the stream is idle, up to `pollMs`. The follow ends at a `status` event other than
 * `running` (the run ended or suspended), or when `maxConnectionMs` is spent (the client
 * resumes). The history record is the fallback when the stream cannot say: a run recorded as
 * no longer running whose stream holds no such status (expired, trimmed, or a lost append) ends
 * with a `status` from its record, which has no id (it is not in the stream).
 */
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { RunStatus } from "../core/run.ts";
import { MovaError, notFound } from "../errors.ts";
import { type Clock, type HistoryStore, RUN_EVENT_ID, type RunEvent, type RunEventStream } from "../ports.ts";

export interface FollowDeps {
  history: HistoryStore;
  events: RunEventStream;
  clock: Clock;
}

export interface FollowOptions {
  /** The longest wait between two reads of an idle stream (RUN_EVENTS_POLL_MS). */
  pollMs: number;
  /** A comment after this long without an event (RUN_EVENTS_HEARTBEAT_MS). */
  heartbeatMs: number;
  /** The follow ends after this long (RUN_EVENTS_MAX_CONNECTION_MS, or less: what the invocation has left). */
  maxConnectionMs: number;
  /** How often an idle follow re-reads the history record; 5 s by default. */
  recheckMs?: number;
  /** How long a run recorded as ended may take to show its last status in the stream; 1 s by default. */
  graceMs?: number;
}

export type FollowItem =
  | { kind: "event"; id?: string; event: RunEvent }
  | { kind: "heartbeat" }
  /** The connection's time is spent: the client resumes with the last id. */
  | { kind: "expired" };

/** The shortest wait between two reads, right after an event. */
const MIN_POLL_MS = 25;
const READ_BATCH = 100;

/** Statuses that go on producing events. */
const isLive = (status: RunStatus | string) => status === "running";

export interface OpenedFollow {
  record: ExecutionRecord;
  /**
   * Nothing will come for this follower: the run is not running, the follower resumes after
   * an id and the stream has nothing after it (answered 204, so that an EventSource stops
   * reconnecting).
   */
  done: boolean;
}

/** Checks the run is the tenant's (404 otherwise: another tenant's run is unknown). */
export async function openFollow(
  tenant: string,
  executionId: string,
  after: string | undefined,
  deps: FollowDeps,
): Promise<OpenedFollow> {
  if (after !== undefined && !RUN_EVENT_ID.test(after))
    throw new MovaError("invalid_event_id", "Last-Event-ID must be an event id of this stream (<ms>-<n>)");
  const record = await deps.history.getExecution(tenant, executionId);
  if (!record) throw notFound(`execution "${executionId}"`);
  if (after === undefined || isLive(record.status)) return { record, done: false };
  const pending = await deps.events.read(tenant, executionId, { after, limit: 1 });
  return { record, done: pending.length === 0 };
}

/** The run's events after `after`, as they come, until the run ends or suspends. */
export async function* followRun(
  request: {
    tenant: string;
    executionId: string;
    after?: string;
    record: ExecutionRecord;
    signal?: AbortSignal;
  },
  deps: FollowDeps,
  options: FollowOptions,
): AsyncGenerator<FollowItem> {
  const { tenant, executionId, signal } = request;
  const { clock } = deps;
  const recheckMs = options.recheckMs ?? 5000;
  const graceMs = options.graceMs ?? 1000;
  const startedAt = clock.now();
  let after = request.after;
  let status: string = request.record.status;
  let checkedAt = startedAt;
  let lastSentAt = startedAt;
  let delay = MIN_POLL_MS;
  /** When the record said the run ended without the stream saying so: the end of the grace. */
  let recorded = request.record;
  // A run that ended a while ago has had its time to show its last status.
  let endsBy: number | undefined = isLive(status)
    ? undefined
    : Math.max(startedAt, (Date.parse(recorded.finishedAt) || 0) + graceMs);

  while (!signal?.aborted) {
    const batch = await deps.events.read(tenant, executionId, {
      ...(after ? { after } : {}),
      limit: READ_BATCH,
    });
    for (const stored of batch) {
      yield { kind: "event", id: stored.id, event: stored.event };
      after = stored.id;
      if (stored.event.type === "status" && !isLive(stored.event.status)) return;
    }
    const now = clock.now();
    if (batch.length > 0) {
      lastSentAt = now;
      delay = MIN_POLL_MS;
      if (batch.length === READ_BATCH) continue;
    } else {
      delay = Math.min(delay * 2, options.pollMs);
      if (isLive(status) && now - checkedAt >= recheckMs) {
        // An idle stream: is the run still going (a lost status append, an expired stream)?
        const record = await deps.history.getExecution(tenant, executionId);
        checkedAt = now;
        if (record) {
          recorded = record;
          status = record.status;
        }
      }
      if (!isLive(status)) {
        endsBy ??= now + graceMs;
        if (now >= endsBy) {
          yield { kind: "event", event: statusOf(recorded) };
          return;
        }
      }
    }
    if (now - startedAt >= options.maxConnectionMs) {
      yield { kind: "expired" };
      return;
    }
    if (now - lastSentAt >= options.heartbeatMs) {
      yield { kind: "heartbeat" };
      lastSentAt = now;
    }
    await clock.sleep(delay, signal).catch(() => undefined);
  }
}

/** A run's last status as its history record says it. */
function statusOf(record: ExecutionRecord): RunEvent {
  return {
    type: "status",
    status: record.status as RunStatus,
    at: record.finishedAt,
    ...(record.error ? { error: record.error } : {}),
  };
}
