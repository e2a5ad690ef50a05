/**
 * The run control store on Redis: one sorted set of runs to look at again (score: epoch ms),
 * a key per cancel request and per claimed callback, each with an expiry.
 */
import type { Redis } from "@upstash/redis";
import type { RunControlStore } from "../../ports.ts";
import { DEFAULT_RUN_CONTROL_PREFIX, memberOf, messageOf } from "../run-control-key.ts";
import { guardRedis } from "./guard.ts";

interface RedisRunControlStoreOptions {
  redis: Redis;
  /** `mova:runctl:` by default; a test may take its own. */
  keyPrefix?: string;
}

export function createRedisRunControlStore(options: RedisRunControlStoreOptions): RunControlStore {
  const { redis } = options;
  const prefix = options.keyPrefix ?? DEFAULT_RUN_CONTROL_PREFIX;
  const scheduleKey = `${prefix}due`;
  const cancelKey = (member: string) => `${prefix}cancel:${member}`;
  const claimKey = (key: string) => `${prefix}claim:${key}`;
  const guard = <T>(call: () => Promise<T>) => guardRedis("run_store_unavailable", "run store", call);

  return {
    async schedule(message, atMs) {
      await guard(() => redis.zadd(scheduleKey, { score: Math.floor(atMs), member: memberOf(message) }));
    },
    async due(nowMs, limit) {
      const reply = await guard(() =>
        redis.zrange<string[]>(scheduleKey, "-inf", Math.floor(nowMs), {
          byScore: true,
          offset: 0,
          count: limit,
          withScores: true,
        }),
      );
      const due: Array<{ message: ReturnType<typeof messageOf> & object; atMs: number }> = [];
      for (let index = 0; index + 1 < reply.length; index += 2) {
        const message = messageOf(String(reply[index]));
        if (message) due.push({ message, atMs: Number(reply[index + 1]) });
      }
      return due;
    },
    async unschedule(message) {
      await guard(() => redis.zrem(scheduleKey, memberOf(message)));
    },
    async requestCancel(message, ttlMs) {
      await guard(() => redis.set(cancelKey(memberOf(message)), "1", { px: Math.max(1, Math.floor(ttlMs)) }));
    },
    async cancelRequested(message) {
      return (await guard(() => redis.exists(cancelKey(memberOf(message))))) === 1;
    },
    async claimOnce(key, ttlMs) {
      const reply = await guard(() =>
        redis.set(claimKey(key), "1", { nx: true, px: Math.max(1, Math.floor(ttlMs)) }),
      );
      return reply === "OK";
    },
    async unclaim(key) {
      await guard(() => redis.del(claimKey(key)));
    },
  };
}
