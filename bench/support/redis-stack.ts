/**
 * What the durability and live-events benchmarks stand on: the local stack with real Redis
 * behind its Upstash bridge, a client of the bridge and a run checkpoint store on it, and
 * execution ids numbered in turn. Without Redis the benchmark is not built (NotBuiltError).
 */
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { createRedisCheckpointStore } from "../../lib/adapters/redis/checkpoint-store.ts";
import { createRedisFromConfig } from "../../lib/adapters/redis/session-store.ts";
import { loadConfig } from "../../lib/config.ts";
import type { RunCheckpointStore } from "../../lib/ports.ts";
import { NotBuiltError } from "../lib/types.ts";

export interface RedisBenchStack {
  stack: LocalStack;
  redis: ReturnType<typeof createRedisFromConfig>;
  checkpoints: RunCheckpointStore;
}

export async function startRedisBenchStack(): Promise<RedisBenchStack> {
  const stack = await startLocalStack({ memory: true });
  if (stack.sessionBackend !== "redis") {
    await stack.stop();
    throw new NotBuiltError(`no Redis behind the local Upstash bridge: ${stack.warnings.join("; ")}`);
  }
  const redis = createRedisFromConfig(loadConfig(stack.env));
  const checkpoints = createRedisCheckpointStore({ redis, maxStateBytes: 1_048_576, retentionMs: 600_000 });
  return { stack, redis, checkpoints };
}

/** `ex_bench_1`, `ex_bench_2`, …: a new execution id each call. */
export function serialExecutionIds(): () => string {
  let serial = 0;
  return () => {
    serial += 1;
    return `ex_bench_${serial}`;
  };
}
