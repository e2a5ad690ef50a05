/**
 * Expiry for the in-memory stand-ins of Redis stores: an entry carries its own expiry (epoch
 * ms), and a read past it deletes the entry and finds nothing, as a key past its TTL in Redis.
 */
export interface Expiring {
  expiresAtMs: number;
}

/** The entry under `key` if it has not expired; an expired one is deleted. */
export function liveEntry<E extends Expiring>(
  entries: Map<string, E>,
  key: string,
  nowMs: number,
): E | undefined {
  const entry = entries.get(key);
  if (entry && entry.expiresAtMs <= nowMs) {
    entries.delete(key);
    return undefined;
  }
  return entry;
}
