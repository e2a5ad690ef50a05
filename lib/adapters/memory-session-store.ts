/**
 * The in-process session store, for `npm run dev` when no Redis can be had. Same semantics
 * as the Redis store: version check and bump in one step (JavaScript runs it without
 * interleaving), TTL renewed on each write, expired sessions gone, tenants apart. State is
 * kept as JSON text so a caller mutating a returned object changes nothing stored.
 */
import { liveEntry } from "./memory-expiry.ts";
import { MovaError } from "../errors.ts";
import { type NewSession, type SessionState, type SessionStore, SESSION_CONFLICT } from "../ports.ts";
import { assertTtl, sessionKey, stampNewSession, stampUpdatedSession } from "./session-state.ts";

interface MemorySessionStoreOptions {
  ttlSeconds: number;
  /** Epoch ms; `Date.now` by default. */
  now?: () => number;
}

interface Entry {
  json: string;
  expiresAtMs: number;
}

export function createMemorySessionStore(options: MemorySessionStoreOptions): SessionStore {
  assertTtl(options.ttlSeconds);
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();

  const live = (key: string): Entry | undefined => liveEntry(entries, key, now());

  function sweepExpired(): void {
    const at = now();
    for (const [key, entry] of entries) if (entry.expiresAtMs <= at) entries.delete(key);
  }

  return {
    async create(session: NewSession) {
      sweepExpired();
      const key = sessionKey(session.tenant, session.sessionId);
      if (live(key)) throw new MovaError("session_conflict", SESSION_CONFLICT);
      const nowMs = now();
      const state = stampNewSession(session, nowMs, options.ttlSeconds);
      entries.set(key, { json: JSON.stringify(state), expiresAtMs: nowMs + options.ttlSeconds * 1000 });
      return state;
    },

    async get(tenant, sessionId) {
      const entry = live(sessionKey(tenant, sessionId));
      return entry ? (JSON.parse(entry.json) as SessionState) : undefined;
    },

    async update(tenant, sessionId, expectedVersion, next) {
      const key = sessionKey(tenant, sessionId);
      const entry = live(key);
      if (!entry) return undefined;
      const stored = JSON.parse(entry.json) as SessionState;
      if (stored.version !== expectedVersion) throw new MovaError("session_conflict", SESSION_CONFLICT);
      const nowMs = now();
      const state = stampUpdatedSession(tenant, sessionId, expectedVersion, next, nowMs, options.ttlSeconds);
      entries.set(key, { json: JSON.stringify(state), expiresAtMs: nowMs + options.ttlSeconds * 1000 });
      return state;
    },

    async delete(tenant, sessionId) {
      const key = sessionKey(tenant, sessionId);
      const existed = live(key) !== undefined;
      entries.delete(key);
      return existed;
    },
  };
}
