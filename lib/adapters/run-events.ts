/**
 * What the Redis and the in-process run event streams share: the key of a run's stream, the
 * form of an event id, the bounds, and how a stored event is read back.
 */
import { MovaError } from "../errors.ts";
import { RUN_EVENT_ID, type RunEvent } from "../ports.ts";

export const DEFAULT_RUN_EVENTS_KEY_PREFIX = "mova:events:";

/** Events kept per run (RUN_EVENTS_MAX_LEN) and how long a stream outlives its last event. */
export const DEFAULT_RUN_EVENTS_MAX_LEN = 1000;
export const DEFAULT_RUN_EVENTS_TTL_SECONDS = 3600;

/** A read answers at most this many events; a follower reads again for the rest. */
export const MAX_READ_EVENTS = 500;
const DEFAULT_READ_EVENTS = 100;

/**
 * `mova:events:<tenant>:<executionId>`, the parts URI-encoded so that a tenant or id holding `:`
 * cannot reach another tenant's stream.
 */
export function runEventsKey(
  tenant: string,
  executionId: string,
  prefix = DEFAULT_RUN_EVENTS_KEY_PREFIX,
): string {
  return `${prefix}${encodeURIComponent(tenant)}:${encodeURIComponent(executionId)}`;
}

export function assertEventId(value: string): void {
  if (!RUN_EVENT_ID.test(value))
    throw new MovaError("invalid_event_id", `"${value.slice(0, 64)}" is not an event id (<ms>-<n>)`);
}

/** Two ids in stream order: negative when `a` comes first. */
export function compareEventIds(a: string, b: string): number {
  const [am = "0", as = "0"] = a.split("-");
  const [bm = "0", bs = "0"] = b.split("-");
  const byMs = BigInt(am) - BigInt(bm);
  if (byMs !== 0n) return byMs < 0n ? -1 : 1;
  const bySeq = BigInt(as) - BigInt(bs);
  return bySeq === 0n ? 0 : bySeq < 0n ? -1 : 1;
}

export function readLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_READ_EVENTS;
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
  return Math.min(limit, MAX_READ_EVENTS);
}

/** A stored event's JSON (or, from a client that parses JSON replies, the object already). */
export function decodeEvent(raw: unknown): RunEvent {
  return (typeof raw === "string" ? JSON.parse(raw) : raw) as RunEvent;
}
