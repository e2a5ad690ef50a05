import type { Redis } from "@upstash/redis";
import type { RunCheckpointStore, RunLease, StoredRun } from "../../ports.ts";
import type { RunState } from "../../core/run.ts";
import {
  assertPositive,
  checkpointTtlMs,
  DEFAULT_RUN_KEY_PREFIX,
  DEFAULT_RUN_RETENTION_MS,
  encodeRunState,
  runConflict,
  runExists,
  runKey,
  runNotFound,
} from "../run-checkpoint.ts";
import { guardRedis } from "./guard.ts";

interface RedisCheckpointStoreOptions {
  redis: Redis;
  /** MAX_RUN_STATE_BYTES: a larger state is refused with `state_too_large`. */
  maxStateBytes: number;
  /** How long a checkpoint outlives its run's deadline; 24 h by default. */
  retentionMs?: number;
  /** Epoch ms; `Date.now` by default. Sets the key's expiry. */
  now?: () => number;
  /** `mova:run:` by default; a test run may take its own. */
  keyPrefix?: string;
}

/** KEYS[1] run key; ARGV[1] state JSON, ARGV[2] TTL ms. */
const CREATE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
redis.call('HSET', KEYS[1], 'version', '1', 'state', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 'ok'
`;

/** KEYS[1] run key; ARGV[1] expected version, ARGV[2] state JSON, ARGV[3] TTL ms. */
const WRITE_SCRIPT = `
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return {'missing'} end
if version ~= ARGV[1] then return {'conflict', version} end
local next = tostring(tonumber(version) + 1)
redis.call('HSET', KEYS[1], 'version', next, 'state', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'ok', next}
`;

/**
 * KEYS[1] run key; ARGV[1] owner, ARGV[2] now, ARGV[3] lease expiry. Taken when there is no
 * lease, it expired, or the owner holds it; the version is bumped (fencing a former holder).
 */
const ACQUIRE_SCRIPT = `
local run = redis.call('HMGET', KEYS[1], 'version', 'state', 'lease_owner', 'lease_expires')
if not run[1] then return {'missing'} end
if run[3] and run[3] ~= ARGV[1] and tonumber(run[4]) and tonumber(run[4]) > tonumber(ARGV[2]) then
  return {'held', run[3], run[4]}
end
local next = tostring(tonumber(run[1]) + 1)
redis.call('HSET', KEYS[1], 'version', next, 'lease_owner', ARGV[1], 'lease_expires', ARGV[3])
return {'ok', next, run[2]}
`;

/** KEYS[1] run key; ARGV[1] owner, ARGV[2] new lease expiry. */
const RENEW_SCRIPT = `
if redis.call('HGET', KEYS[1], 'lease_owner') ~= ARGV[1] then return 'lost' end
redis.call('HSET', KEYS[1], 'lease_expires', ARGV[2])
return 'ok'
`;

/** KEYS[1] run key; ARGV[1] owner. */
const RELEASE_SCRIPT = `
if redis.call('HGET', KEYS[1], 'lease_owner') ~= ARGV[1] then return 'lost' end
redis.call('HDEL', KEYS[1], 'lease_owner', 'lease_expires')
return 'ok'
`;

const FIELDS = ["version", "state", "lease_owner", "lease_expires"] as const;

export function createRedisCheckpointStore(options: RedisCheckpointStoreOptions): RunCheckpointStore {
  const { redis, maxStateBytes } = options;
  assertPositive("maxStateBytes", maxStateBytes);
  const retentionMs = options.retentionMs ?? DEFAULT_RUN_RETENTION_MS;
  assertPositive("retentionMs", retentionMs);
  const now = options.now ?? Date.now;
  const prefix = options.keyPrefix ?? DEFAULT_RUN_KEY_PREFIX;
  const keyOf = (tenant: string, executionId: string) => runKey(tenant, executionId, prefix);
  const run = <T>(script: string, key: string, args: string[]) =>
    guardRedis("run_store_unavailable", "run store", () => redis.eval<string[], T>(script, [key], args));

  return {
    async create(tenant, executionId, state) {
      const json = encodeRunState(state, maxStateBytes);
      const ttl = checkpointTtlMs(state, now(), retentionMs);
      const reply = await run<unknown>(CREATE_SCRIPT, keyOf(tenant, executionId), [json, String(ttl)]);
      if (reply === "exists") throw runExists(executionId);
      if (reply !== "ok") throw unexpected("create", reply);
      return { version: 1, state: JSON.parse(json) as RunState };
    },

    async get(tenant, executionId) {
      const fields = await guardRedis("run_store_unavailable", "run store", () =>
        redis.hmget<Record<(typeof FIELDS)[number], unknown>>(keyOf(tenant, executionId), ...FIELDS),
      );
      if (!fields || fields.version === null || fields.version === undefined) return undefined;
      const stored: StoredRun = { version: Number(fields.version), state: decodeState(fields.state) };
      const lease = decodeLease(fields.lease_owner, fields.lease_expires);
      if (lease) stored.lease = lease;
      return stored;
    },

    async write(tenant, executionId, expectedVersion, state) {
      const json = encodeRunState(state, maxStateBytes);
      const ttl = checkpointTtlMs(state, now(), retentionMs);
      const reply = await run<unknown[]>(WRITE_SCRIPT, keyOf(tenant, executionId), [
        String(expectedVersion),
        json,
        String(ttl),
      ]);
      switch (outcomeOf(reply)) {
        case "ok":
          return Number((reply as unknown[])[1]);
        case "conflict":
          throw runConflict(executionId);
        case "missing":
          throw runNotFound(executionId);
        default:
          throw unexpected("write", reply);
      }
    },

    async acquireLease(tenant, executionId, owner, ttlMs, at) {
      assertPositive("ttlMs", ttlMs);
      const expiresAt = at + ttlMs;
      const reply = await run<unknown[]>(ACQUIRE_SCRIPT, keyOf(tenant, executionId), [
        owner,
        String(at),
        String(expiresAt),
      ]);
      switch (outcomeOf(reply)) {
        case "ok": {
          const [, version, state] = reply as unknown[];
          return { version: Number(version), state: decodeState(state), lease: { owner, expiresAt } };
        }
        case "held":
          return undefined;
        case "missing":
          throw runNotFound(executionId);
        default:
          throw unexpected("acquireLease", reply);
      }
    },

    async renewLease(tenant, executionId, owner, ttlMs, at) {
      assertPositive("ttlMs", ttlMs);
      const reply = await run<unknown>(RENEW_SCRIPT, keyOf(tenant, executionId), [owner, String(at + ttlMs)]);
      return reply === "ok";
    },

    async releaseLease(tenant, executionId, owner) {
      const reply = await run<unknown>(RELEASE_SCRIPT, keyOf(tenant, executionId), [owner]);
      return reply === "ok";
    },
  };
}

function outcomeOf(reply: unknown): unknown {
  return Array.isArray(reply) ? reply[0] : reply;
}

/** The client deserialises JSON replies by default; one built with `automaticDeserialization: false` does not. */
function decodeState(raw: unknown): RunState {
  return (typeof raw === "string" ? JSON.parse(raw) : raw) as RunState;
}

function decodeLease(owner: unknown, expires: unknown): RunLease | undefined {
  if (owner === null || owner === undefined) return undefined;
  return { owner: String(owner), expiresAt: Number(expires) };
}

function unexpected(script: string, reply: unknown): Error {
  return new Error(`unexpected reply from the run checkpoint ${script} script: ${JSON.stringify(reply)}`);
}
