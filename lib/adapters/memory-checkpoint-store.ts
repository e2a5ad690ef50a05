/**
 * The in-process run checkpoint store, for tests and a local stack without Redis. Same
 * semantics as the Redis store: each change checked against the version and applied in one
 * step (JavaScript runs it without interleaving), leases taken by compare-and-set, expired
 * checkpoints gone, tenants apart. States are kept as JSON text, so a caller mutating a
 * returned object changes nothing stored.
 */
import { liveEntry } from "./memory-expiry.ts";
import type { RunCheckpointStore, RunLease, StoredRun } from "../ports.ts";
import type { RunState } from "../core/run.ts";
import {
  assertPositive,
  checkpointTtlMs,
  DEFAULT_RUN_RETENTION_MS,
  encodeRunState,
  runConflict,
  runExists,
  runKey,
  runNotFound,
} from "./run-checkpoint.ts";

interface MemoryCheckpointStoreOptions {
  maxStateBytes: number;
  retentionMs?: number;
  /** Epoch ms; `Date.now` by default. */
  now?: () => number;
}

interface Entry {
  version: number;
  json: string;
  lease?: RunLease;
  expiresAtMs: number;
}

export function createMemoryCheckpointStore(options: MemoryCheckpointStoreOptions): RunCheckpointStore {
  const { maxStateBytes } = options;
  assertPositive("maxStateBytes", maxStateBytes);
  const retentionMs = options.retentionMs ?? DEFAULT_RUN_RETENTION_MS;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();

  const live = (key: string): Entry | undefined => liveEntry(entries, key, now());

  function stored(entry: Entry): StoredRun {
    const run: StoredRun = { version: entry.version, state: JSON.parse(entry.json) as RunState };
    if (entry.lease) run.lease = { ...entry.lease };
    return run;
  }

  return {
    async create(tenant, executionId, state) {
      const json = encodeRunState(state, maxStateBytes);
      const key = runKey(tenant, executionId);
      if (live(key)) throw runExists(executionId);
      const at = now();
      const entry: Entry = { version: 1, json, expiresAtMs: at + checkpointTtlMs(state, at, retentionMs) };
      entries.set(key, entry);
      return stored(entry);
    },

    async get(tenant, executionId) {
      const entry = live(runKey(tenant, executionId));
      return entry ? stored(entry) : undefined;
    },

    async write(tenant, executionId, expectedVersion, state) {
      const json = encodeRunState(state, maxStateBytes);
      const entry = live(runKey(tenant, executionId));
      if (!entry) throw runNotFound(executionId);
      if (entry.version !== expectedVersion) throw runConflict(executionId);
      const at = now();
      entry.version += 1;
      entry.json = json;
      entry.expiresAtMs = at + checkpointTtlMs(state, at, retentionMs);
      return entry.version;
    },

    async acquireLease(tenant, executionId, owner, ttlMs, at) {
      assertPositive("ttlMs", ttlMs);
      const entry = live(runKey(tenant, executionId));
      if (!entry) throw runNotFound(executionId);
      const lease = entry.lease;
      if (lease && lease.owner !== owner && lease.expiresAt > at) return undefined;
      entry.version += 1;
      entry.lease = { owner, expiresAt: at + ttlMs };
      return stored(entry);
    },

    async renewLease(tenant, executionId, owner, ttlMs, at) {
      assertPositive("ttlMs", ttlMs);
      const entry = live(runKey(tenant, executionId));
      if (entry?.lease?.owner !== owner) return false;
      entry.lease = { owner, expiresAt: at + ttlMs };
      return true;
    },

    async releaseLease(tenant, executionId, owner) {
      const entry = live(runKey(tenant, executionId));
      if (entry?.lease?.owner !== owner) return false;
      delete entry.lease;
      return true;
    },
  };
}
