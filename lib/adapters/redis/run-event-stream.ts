/**
 * A run's live events in a Redis stream (Upstash REST, or the local bridge in front of a real
 * Redis), one per tenant and execution. An append of one or more events is one script: an
 * XADD with an exact MAXLEN per event (the stream never holds more than `maxLen` events) and
 * one PEXPIRE (the stream goes `ttlSeconds` after its last event), so a crash between the two
 * cannot leave a stream without its expiry. Reads are XRANGE from after the follower's last id: the REST API has no
 * connection to block on, so a follower polls (lib/services/follow-run.ts).
 */
import type { Redis } from "@upstash/redis";
import type { RunEventStream, StoredRunEvent } from "../../ports.ts";
import {
  assertEventId,
  DEFAULT_RUN_EVENTS_KEY_PREFIX,
  DEFAULT_RUN_EVENTS_MAX_LEN,
  DEFAULT_RUN_EVENTS_TTL_SECONDS,
  decodeEvent,
  readLimit,
  runEventsKey,
} from "../run-events.ts";
import { assertPositive } from "../run-checkpoint.ts";
import { guardRedis } from "./guard.ts";

interface RedisRunEventStreamOptions {
  redis: Redis;
  /** RUN_EVENTS_MAX_LEN: events kept per run (the oldest are trimmed). */
  maxLen?: number;
  /** RUN_EVENTS_TTL_SECONDS: how long a stream outlives its last event. */
  ttlSeconds?: number;
  /** `mova:events:` by default; a test run may take its own. */
  keyPrefix?: string;
}

/** KEYS[1] stream key; ARGV[1] max length, ARGV[2] TTL ms, ARGV[3…] the events' JSON. */
const APPEND_SCRIPT = `
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'e', ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return ids
`;

/** KEYS[1] stream key; ARGV[1] start (`-` or `(<id>`), ARGV[2] count. Flat: id, event, id, event… */
const READ_SCRIPT = `
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local out = {}
for _, entry in ipairs(entries) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
`;

export function createRedisRunEventStream(options: RedisRunEventStreamOptions): RunEventStream {
  const { redis } = options;
  const maxLen = options.maxLen ?? DEFAULT_RUN_EVENTS_MAX_LEN;
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_RUN_EVENTS_TTL_SECONDS;
  assertPositive("maxLen", maxLen);
  assertPositive("ttlSeconds", ttlSeconds);
  const prefix = options.keyPrefix ?? DEFAULT_RUN_EVENTS_KEY_PREFIX;
  const call = <T>(script: string, key: string, args: string[]) =>
    guardRedis("run_events_unavailable", "run event stream", () =>
      redis.eval<string[], T>(script, [key], args),
    );

  return {
    async append(tenant, executionId, events) {
      if (events.length === 0) return [];
      const ids = await call<unknown>(APPEND_SCRIPT, runEventsKey(tenant, executionId, prefix), [
        String(maxLen),
        String(ttlSeconds * 1000),
        ...events.map((event) => JSON.stringify(event)),
      ]);
      if (!Array.isArray(ids) || ids.length !== events.length || !ids.every((id) => typeof id === "string"))
        throw new Error(`unexpected reply from the append script: ${JSON.stringify(ids)}`);
      return ids as string[];
    },

    async read(tenant, executionId, query = {}) {
      if (query.after !== undefined) assertEventId(query.after);
      const start = query.after === undefined ? "-" : `(${query.after}`;
      const reply = await call<unknown[] | null>(READ_SCRIPT, runEventsKey(tenant, executionId, prefix), [
        start,
        String(readLimit(query.limit)),
      ]);
      const events: StoredRunEvent[] = [];
      const flat = reply ?? [];
      for (let index = 0; index + 1 < flat.length; index += 2) {
        events.push({ id: String(flat[index]), event: decodeEvent(flat[index + 1]) });
      }
      return events;
    },
  };
}
