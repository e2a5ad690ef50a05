/**
 * Sessions in Upstash Redis (or the local Upstash-compatible bridge in front of a real
 * Redis). One key per session, `mova:session:<tenant>:<sessionId>`, holding the state as
 * JSON, its `version` included, with an expiry renewed on each write.
 *
 * The update is one Lua script (EVAL), so the version check, the write and the TTL renewal
 * happen atomically on the server: two concurrent updates from the same version cannot
 * both succeed. Lua rather than WATCH/MULTI because the REST API has no connection to
 * watch on and the bridge has no /multi-exec; Upstash runs the same script.
 */
import { guardRedis } from "./guard.ts";
import { MovaError, StoreUnavailableError } from "../../errors.ts";
import { Redis } from "@upstash/redis";
import type { Config } from "../../config.ts";
import { type NewSession, type SessionState, type SessionStore, SESSION_CONFLICT } from "../../ports.ts";
import {
  assertTtl,
  DEFAULT_SESSION_KEY_PREFIX,
  sessionKey,
  stampNewSession,
  stampUpdatedSession,
} from "../session-state.ts";

interface RedisSessionStoreOptions {
  redis: Redis;
  ttlSeconds: number;
  /** Epoch ms; `Date.now` by default. Stamps the state's times (Redis keeps the expiry itself). */
  now?: () => number;
  /** `mova:session:` by default; a test run may take its own. */
  keyPrefix?: string;
}

/**
 * KEYS[1] session key; ARGV[1] expected version, ARGV[2] new JSON, ARGV[3] TTL seconds.
 * Only the stored version is decoded; the new state is written as the client encoded it
 * (cjson would turn empty arrays into objects if the whole state went through it).
 */
const UPDATE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current then return {'missing'} end
local ok, stored = pcall(cjson.decode, current)
if not ok or type(stored) ~= 'table' then return {'corrupt'} end
if tonumber(stored['version']) ~= tonumber(ARGV[1]) then return {'conflict'} end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return {'ok'}
`;

export function createRedisSessionStore(options: RedisSessionStoreOptions): SessionStore {
  assertTtl(options.ttlSeconds);
  const { redis, ttlSeconds } = options;
  const now = options.now ?? Date.now;
  const prefix = options.keyPrefix ?? DEFAULT_SESSION_KEY_PREFIX;
  const keyOf = (tenant: string, sessionId: string) => sessionKey(tenant, sessionId, prefix);

  return {
    async create(session: NewSession) {
      const state = stampNewSession(session, now(), ttlSeconds);
      const written = await guardRedis("session_store_unavailable", "session store", () =>
        redis.set(keyOf(session.tenant, session.sessionId), JSON.stringify(state), {
          nx: true,
          ex: ttlSeconds,
        }),
      );
      if (written !== "OK") throw new MovaError("session_conflict", SESSION_CONFLICT);
      return state;
    },

    async get(tenant, sessionId) {
      const raw = await guardRedis("session_store_unavailable", "session store", () =>
        redis.get<unknown>(keyOf(tenant, sessionId)),
      );
      return decodeState(raw);
    },

    async update(tenant, sessionId, expectedVersion, next) {
      const state = stampUpdatedSession(tenant, sessionId, expectedVersion, next, now(), ttlSeconds);
      const reply = await guardRedis("session_store_unavailable", "session store", () =>
        redis.eval<string[], unknown>(
          UPDATE_SCRIPT,
          [keyOf(tenant, sessionId)],
          [String(expectedVersion), JSON.stringify(state), String(ttlSeconds)],
        ),
      );
      const outcome = Array.isArray(reply) ? reply[0] : reply;
      switch (outcome) {
        case "ok":
          return state;
        case "missing":
          return undefined;
        case "conflict":
          throw new MovaError("session_conflict", SESSION_CONFLICT);
        case "corrupt":
          throw new Error(`session ${sessionId} holds a value that is not session JSON`);
        default:
          throw new Error(`unexpected reply from the session update script: ${JSON.stringify(reply)}`);
      }
    },

    async delete(tenant, sessionId) {
      const removed = await guardRedis("session_store_unavailable", "session store", () =>
        redis.del(keyOf(tenant, sessionId)),
      );
      return removed > 0;
    },
  };
}

/** The client deserialises JSON replies by default; one built with `automaticDeserialization: false` does not. */
function decodeState(raw: unknown): SessionState | undefined {
  if (raw === null || raw === undefined) return undefined;
  if (typeof raw === "string") return JSON.parse(raw) as SessionState;
  return raw as SessionState;
}

interface RedisClientOptions {
  /** Give up on one request after this long (ms). */
  requestTimeoutMs?: number;
  /** Retries after a network failure (not after a Redis error). */
  retries?: number;
}

/**
 * The Upstash client for the runtime. `responseEncoding: false` because the local bridge
 * cannot base64-encode replies; short retries and a per-request timeout so a dead Redis is
 * reported (503) within about two seconds instead of after the client's long default backoff.
 */
export function createRedisFromConfig(
  config: Pick<Config, "UPSTASH_REDIS_REST_URL" | "UPSTASH_REDIS_REST_TOKEN">,
  options: RedisClientOptions = {},
): Redis {
  if (!config.UPSTASH_REDIS_REST_URL || !config.UPSTASH_REDIS_REST_TOKEN) {
    throw new StoreUnavailableError(
      "session_store_unavailable",
      "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must both be set",
    );
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? 1_500;
  return new Redis({
    url: config.UPSTASH_REDIS_REST_URL,
    token: config.UPSTASH_REDIS_REST_TOKEN,
    responseEncoding: false,
    enableTelemetry: false,
    retry: { retries: options.retries ?? 2, backoff: (retryCount) => 50 * 2 ** retryCount },
    // A function, so each request gets a fresh timeout; a plain aborted signal would make
    // the client answer "Aborted" as if it were a result instead of failing.
    signal: () => AbortSignal.timeout(requestTimeoutMs),
  });
}
