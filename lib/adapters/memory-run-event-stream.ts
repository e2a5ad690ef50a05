/**
 * The in-process run event stream, for tests and a local stack without Redis: the Redis
 * stream's semantics (ids `<ms>-<n>` in order, the last `maxLen` events kept, the stream gone
 * `ttlSeconds` after its last event, tenants apart). Events are kept as JSON text, so a caller
 * mutating what it appended or read changes nothing stored.
 */
import { liveEntry } from "./memory-expiry.ts";
import type { RunEventStream } from "../ports.ts";
import {
  assertEventId,
  compareEventIds,
  DEFAULT_RUN_EVENTS_MAX_LEN,
  DEFAULT_RUN_EVENTS_TTL_SECONDS,
  decodeEvent,
  readLimit,
  runEventsKey,
} from "./run-events.ts";
import { assertPositive } from "./run-checkpoint.ts";

interface MemoryRunEventStreamOptions {
  maxLen?: number;
  ttlSeconds?: number;
  /** Epoch ms; `Date.now` by default. */
  now?: () => number;
}

interface Stream {
  entries: Array<{ id: string; json: string }>;
  lastMs: number;
  lastSeq: number;
  expiresAtMs: number;
}

export function createMemoryRunEventStream(options: MemoryRunEventStreamOptions = {}): RunEventStream {
  const maxLen = options.maxLen ?? DEFAULT_RUN_EVENTS_MAX_LEN;
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_RUN_EVENTS_TTL_SECONDS;
  assertPositive("maxLen", maxLen);
  assertPositive("ttlSeconds", ttlSeconds);
  const now = options.now ?? Date.now;
  const streams = new Map<string, Stream>();

  return {
    async append(tenant, executionId, events) {
      if (events.length === 0) return [];
      const key = runEventsKey(tenant, executionId);
      const at = now();
      const stream = liveEntry(streams, key, at) ?? { entries: [], lastMs: 0, lastSeq: -1, expiresAtMs: 0 };
      const ids: string[] = [];
      for (const event of events) {
        // As XADD `*`: the time in ms, or the last id's time with the next sequence if the clock went back.
        const ms = Math.max(at, stream.lastMs);
        const seq = ms === stream.lastMs ? stream.lastSeq + 1 : 0;
        const id = `${ms}-${seq}`;
        stream.entries.push({ id, json: JSON.stringify(event) });
        stream.lastMs = ms;
        stream.lastSeq = seq;
        ids.push(id);
      }
      if (stream.entries.length > maxLen) stream.entries.splice(0, stream.entries.length - maxLen);
      stream.expiresAtMs = at + ttlSeconds * 1000;
      streams.set(key, stream);
      return ids;
    },

    async read(tenant, executionId, query = {}) {
      if (query.after !== undefined) assertEventId(query.after);
      const limit = readLimit(query.limit);
      const stream = liveEntry(streams, runEventsKey(tenant, executionId), now());
      if (!stream) return [];
      const after = query.after;
      const from =
        after === undefined ? 0 : stream.entries.findIndex((entry) => compareEventIds(entry.id, after) > 0);
      if (from < 0) return [];
      return stream.entries
        .slice(from, from + limit)
        .map((entry) => ({ id: entry.id, event: decodeEvent(entry.json) }));
    },
  };
}
