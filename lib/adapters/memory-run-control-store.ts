/** The in-process run control store, for tests and a local stack without Redis: the Redis store's semantics. */
import type { RunControlStore } from "../ports.ts";
import { memberOf, messageOf } from "./run-control-key.ts";

export function createMemoryRunControlStore(options: { now?: () => number } = {}): RunControlStore {
  const now = options.now ?? Date.now;
  const scheduled = new Map<string, number>();
  const expiring = new Map<string, number>();
  const live = (key: string) => {
    const until = expiring.get(key);
    if (until === undefined) return false;
    if (until > now()) return true;
    expiring.delete(key);
    return false;
  };
  return {
    async schedule(message, atMs) {
      scheduled.set(memberOf(message), Math.floor(atMs));
    },
    async due(nowMs, limit) {
      return [...scheduled.entries()]
        .filter(([, at]) => at <= nowMs)
        .sort((a, b) => a[1] - b[1])
        .slice(0, limit)
        .flatMap(([member, atMs]) => {
          const message = messageOf(member);
          return message ? [{ message, atMs }] : [];
        });
    },
    async unschedule(message) {
      scheduled.delete(memberOf(message));
    },
    async requestCancel(message, ttlMs) {
      expiring.set(`cancel:${memberOf(message)}`, now() + ttlMs);
    },
    async cancelRequested(message) {
      return live(`cancel:${memberOf(message)}`);
    },
    async claimOnce(key, ttlMs) {
      if (live(`claim:${key}`)) return false;
      expiring.set(`claim:${key}`, now() + ttlMs);
      return true;
    },
    async unclaim(key) {
      expiring.delete(`claim:${key}`);
    },
  };
}
