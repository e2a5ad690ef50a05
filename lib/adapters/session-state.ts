/**
 * What the Redis and the in-process session stores share: the key of a session, and how a
 * new or updated state is stamped (version, times, expiry).
 */
import type { NewSession, SessionState } from "../ports.ts";

export const DEFAULT_SESSION_KEY_PREFIX = "mova:session:";

/**
 * `mova:session:<tenant>:<sessionId>`. The parts are URI-encoded so that a tenant or id
 * holding `:` cannot reach another tenant's key; ordinary names are unchanged.
 */
export function sessionKey(tenant: string, sessionId: string, prefix = DEFAULT_SESSION_KEY_PREFIX): string {
  return `${prefix}${encodeURIComponent(tenant)}:${encodeURIComponent(sessionId)}`;
}

export function stampNewSession(session: NewSession, nowMs: number, ttlSeconds: number): SessionState {
  const now = new Date(nowMs).toISOString();
  return {
    ...session,
    createdAt: now,
    updatedAt: now,
    expiresAt: new Date(nowMs + ttlSeconds * 1000).toISOString(),
    version: 1,
  };
}

export function stampUpdatedSession(
  tenant: string,
  sessionId: string,
  expectedVersion: number,
  next: Omit<SessionState, "version" | "updatedAt" | "expiresAt">,
  nowMs: number,
  ttlSeconds: number,
): SessionState {
  return {
    ...next,
    // The key decides which session is written, never the body.
    tenant,
    sessionId,
    updatedAt: new Date(nowMs).toISOString(),
    expiresAt: new Date(nowMs + ttlSeconds * 1000).toISOString(),
    version: expectedVersion + 1,
  };
}

export function assertTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  }
}
