/**
 * One behaviour suite for both run checkpoint stores: the Redis store through the real Upstash
 * client, the real bridge and a real Redis (from the local stack), and the in-process store.
 */
import net from "node:net";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../../infra/local/stack.ts";
import { loadConfig } from "../../../lib/config.ts";
import { createMemoryCheckpointStore } from "../../../lib/adapters/memory-checkpoint-store.ts";
import { createRedisCheckpointStore } from "../../../lib/adapters/redis/checkpoint-store.ts";
import { createRedisFromConfig } from "../../../lib/adapters/redis/session-store.ts";
import { runKey } from "../../../lib/adapters/run-checkpoint.ts";
import type { RunCheckpointStore } from "../../../lib/ports.ts";
import type { RunState } from "../../../lib/core/run.ts";
import { MovaError, StoreUnavailableError } from "../../../lib/errors.ts";
import { uniqueTenant } from "../../support/runtime-fixtures.ts";
import { advanceRun } from "../../../lib/engine/engine.ts";
import { newRunState } from "../../../lib/engine/run-state.ts";
import { MovaDocument } from "../../../lib/mova/schema.ts";

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
});

afterAll(async () => {
  await stack?.stop();
});

interface StoreOptions {
  maxStateBytes?: number;
  retentionMs?: number;
}

type StoreFactory = (options?: StoreOptions) => RunCheckpointStore;

const redisClient = () => {
  if (stack.sessionBackend !== "redis") throw new Error(`no Redis here: ${stack.warnings.join("; ")}`);
  return createRedisFromConfig(loadConfig(stack.env));
};

const factories: Array<[string, StoreFactory]> = [
  [
    "redis (bridge + real Redis)",
    (options = {}) =>
      createRedisCheckpointStore({
        redis: redisClient(),
        maxStateBytes: options.maxStateBytes ?? 262_144,
        ...(options.retentionMs !== undefined && { retentionMs: options.retentionMs }),
      }),
  ],
  [
    "memory",
    (options = {}) =>
      createMemoryCheckpointStore({
        maxStateBytes: options.maxStateBytes ?? 262_144,
        ...(options.retentionMs !== undefined && { retentionMs: options.retentionMs }),
      }),
  ],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sampleState(overrides: Partial<RunState> = {}): RunState {
  return {
    v: 2,
    protocol: "loop",
    status: "running",
    next: "tick",
    variables: { counter: { n: 0 }, empty: [], nested: {} },
    path: [],
    stepCount: 0,
    visits: {},
    unresolved: [],
    startedAt: new Date().toISOString(),
    deadlineAt: Date.now() + 3_600_000,
    offline: false,
    secretNames: [],
    ...overrides,
  };
}

const executionId = () => `ex_${randomUUID()}`;

describe.each(factories)("run checkpoint store: %s", (_name, makeStore) => {
  it("creates a checkpoint at version 1, reads it back, and bumps the version on each write", async () => {
    const store = makeStore();
    const tenant = uniqueTenant("crud");
    const id = executionId();
    const state = sampleState();
    expect(await store.get(tenant, id)).toBeUndefined();
    expect(await store.create(tenant, id, state)).toEqual({ version: 1, state });
    // Empty arrays and objects survive the round trip (the scripts never decode the state).
    expect(await store.get(tenant, id)).toEqual({ version: 1, state });

    const next = sampleState({ next: "more", stepCount: 1, path: ["tick"], visits: { tick: 1 } });
    expect(await store.write(tenant, id, 1, next)).toBe(2);
    expect(await store.get(tenant, id)).toEqual({ version: 2, state: next });
    expect(await store.write(tenant, id, 2, { ...next, stepCount: 2 })).toBe(3);
  });

  it("refuses a second checkpoint for one run and a write to a run it does not have", async () => {
    const store = makeStore();
    const tenant = uniqueTenant("dup");
    const id = executionId();
    await store.create(tenant, id, sampleState());
    await expect(store.create(tenant, id, sampleState({ stepCount: 9 }))).rejects.toMatchObject({
      code: "run_exists",
    });
    expect((await store.get(tenant, id))?.state.stepCount).toBe(0);
    await expect(store.write(tenant, executionId(), 1, sampleState())).rejects.toMatchObject({
      code: "run_not_found",
    });
  });

  it("answers a stale version with run_conflict and changes nothing", async () => {
    const store = makeStore();
    const tenant = uniqueTenant("stale");
    const id = executionId();
    await store.create(tenant, id, sampleState());
    await store.write(tenant, id, 1, sampleState({ stepCount: 1 }));
    const before = await store.get(tenant, id);
    const error = await store.write(tenant, id, 1, sampleState({ stepCount: 99 })).catch((e) => e);
    expect(error).toBeInstanceOf(MovaError);
    expect(error.code).toBe("run_conflict");
    expect(await store.get(tenant, id)).toEqual(before);
  });

  it("lets exactly one of 20 writes from the same version through", async () => {
    const store = makeStore();
    const tenant = uniqueTenant("race");
    const id = executionId();
    await store.create(tenant, id, sampleState());
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, n) => store.write(tenant, id, 1, sampleState({ stepCount: n + 1 }))),
    );
    const won = outcomes.filter((o) => o.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const lost of outcomes.filter((o) => o.status === "rejected"))
      expect((lost as PromiseRejectedResult).reason).toMatchObject({ code: "run_conflict" });
    const stored = await store.get(tenant, id);
    expect(stored?.version).toBe(2);
    expect(stored?.state.stepCount).toBeGreaterThan(0);
  });

  it("gives a lease to exactly one of two racing takers, and to no one else while it lives", async () => {
    const store = makeStore();
    const tenant = uniqueTenant("lease");
    const id = executionId();
    await store.create(tenant, id, sampleState());
    const now = Date.now();
    const [a, b] = await Promise.all([
      store.acquireLease(tenant, id, "runner-a", 30_000, now),
      store.acquireLease(tenant, id, "runner-b", 30_000, now),
    ]);
    const winners = [a, b].filter((taken) => taken !== undefined);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    const owner = winner.lease!.owner;
    const other = owner === "runner-a" ? "runner-b" : "runner-a";
    // Taking the lease bumped the version once, and answered the state with it.
    expect(winner).toMatchObject({
      version: 2,
      state: sampleState({ startedAt: winner.state.startedAt, deadlineAt: winner.state.deadlineAt }),
    });
    expect(winner.lease).toEqual({ owner, expiresAt: now + 30_000 });
    expect((await store.get(tenant, id))?.lease).toEqual({ owner, expiresAt: now + 30_000 });

    expect(await store.acquireLease(tenant, id, other, 30_000, now + 1_000)).toBeUndefined();
    // The holder may take it again (a redelivered message to the same worker).
    expect((await store.acquireLease(tenant, id, owner, 30_000, now + 1_000))?.version).toBe(3);
    expect(await store.renewLease(tenant, id, other, 30_000, now + 2_000)).toBe(false);
    expect(await store.renewLease(tenant, id, owner, 60_000, now + 2_000)).toBe(true);
    expect((await store.get(tenant, id))?.lease).toEqual({ owner, expiresAt: now + 62_000 });
    expect((await store.get(tenant, id))?.version).toBe(3);
    expect(await store.releaseLease(tenant, id, other)).toBe(false);
    expect(await store.releaseLease(tenant, id, owner)).toBe(true);
    expect((await store.get(tenant, id))?.lease).toBeUndefined();
    expect((await store.acquireLease(tenant, id, other, 30_000, now + 3_000))?.lease?.owner).toBe(other);
    await expect(store.acquireLease(tenant, executionId(), owner, 30_000, now)).rejects.toMatchObject({
      code: "run_not_found",
    });
  });

  it("lets another worker take over an expired lease, after which the former holder's write conflicts", async () => {
    const store = makeStore();
    const tenant = uniqueTenant("expired");
    const id = executionId();
    await store.create(tenant, id, sampleState());
    const now = Date.now();
    const first = await store.acquireLease(tenant, id, "crashed", 10_000, now);
    expect(first?.version).toBe(2);
    expect(await store.acquireLease(tenant, id, "next", 10_000, now + 9_999)).toBeUndefined();
    const taken = await store.acquireLease(tenant, id, "next", 10_000, now + 10_000);
    expect(taken).toMatchObject({ version: 3, lease: { owner: "next", expiresAt: now + 20_000 } });
    // The crashed worker comes back: its version is stale and its lease is gone.
    await expect(store.write(tenant, id, 2, sampleState({ stepCount: 5 }))).rejects.toMatchObject({
      code: "run_conflict",
    });
    expect(await store.renewLease(tenant, id, "crashed", 10_000, now + 10_001)).toBe(false);
    expect(await store.write(tenant, id, 3, sampleState({ stepCount: 1 }))).toBe(4);
    // A write keeps the lease.
    expect((await store.get(tenant, id))?.lease?.owner).toBe("next");
  });

  it("refuses a state over the size limit with state_too_large and writes nothing", async () => {
    const store = makeStore({ maxStateBytes: 2_048 });
    const tenant = uniqueTenant("big");
    const id = executionId();
    const big = sampleState({ variables: { blob: "é".repeat(1_500) } });
    const error = await store.create(tenant, id, big).catch((e) => e);
    expect(error).toBeInstanceOf(MovaError);
    expect(error).toMatchObject({ code: "state_too_large", details: { limit: 2_048 } });
    expect(await store.get(tenant, id)).toBeUndefined();

    await store.create(tenant, id, sampleState());
    await expect(store.write(tenant, id, 1, big)).rejects.toMatchObject({ code: "state_too_large" });
    expect(await store.get(tenant, id)).toEqual({
      version: 1,
      state: sampleState({ startedAt: expect.any(String), deadlineAt: expect.any(Number) }),
    });
  });

  it("checkpoints a run the engine advances, and fails the step whose output makes the state too large", async () => {
    const store = makeStore({ maxStateBytes: 4_096 });
    const tenant = uniqueTenant("engine");
    const document = MovaDocument.parse({
      version: "2.2",
      tools: [
        {
          id: "grow",
          name: "Grow",
          endpoint: "https://grow.example/",
          method: "GET",
          parameters: { n: "{n.n}" },
        },
      ],
      protocols: [
        {
          name: "grow",
          steps: [
            { id: "tick", action: "tool_api", tool_api_id: "grow", output: "n" },
            {
              id: "more",
              action: "condition",
              conditions: [{ variable: "n.n", operator: "less_than", value: 10 }],
              next_step: "tick",
              else_step: "done",
            },
            { id: "done", action: "end", response_template: "{n.n}" },
          ],
        },
      ],
    });
    const advance = async (padding: number) => {
      const id = executionId();
      const state = newRunState({ document, protocol: "grow", variables: { n: { n: 0 } } });
      let { version } = await store.create(tenant, id, state);
      const result = await advanceRun({
        document,
        state,
        executionId: id,
        ports: {
          llm: { offline: true, complete: async () => ({ text: "", model: "none" }) },
          tools: {
            call: async (request) => {
              const n = Number(request.query?.n) + 1;
              return { status: 200, headers: {}, body: { n, pad: "x".repeat(n * padding) } };
            },
          },
        },
        checkpoint: async (next) => {
          version = await store.write(tenant, id, version, next);
        },
      });
      return { result, stored: await store.get(tenant, id) };
    };

    const small = await advance(10);
    expect(small.result.status).toBe("completed");
    expect(small.stored).toMatchObject({
      version: 22,
      state: { status: "completed", output: "10", stepCount: 21 },
    });

    const large = await advance(1_000);
    expect(large.result.status).toBe("failed");
    expect(large.result.error?.code).toBe("state_too_large");
    // tick 4 (4 000 bytes of padding) was too large; the stored state keeps tick 3's variables.
    expect(large.stored?.state).toMatchObject({ status: "failed", stepCount: 7, variables: { n: { n: 3 } } });
  });

  it("keeps tenants apart", async () => {
    const store = makeStore();
    const owner = uniqueTenant("owner");
    const intruder = uniqueTenant("intruder");
    const id = executionId();
    await store.create(owner, id, sampleState());
    expect(await store.get(intruder, id)).toBeUndefined();
    await expect(store.write(intruder, id, 1, sampleState())).rejects.toMatchObject({
      code: "run_not_found",
    });
    expect((await store.get(owner, id))?.version).toBe(1);
  });

  it("expires a checkpoint its retention after the run's deadline", async () => {
    const store = makeStore({ retentionMs: 400 });
    const tenant = uniqueTenant("ttl");
    const id = executionId();
    await store.create(tenant, id, sampleState({ deadlineAt: Date.now() + 400 }));
    await sleep(300);
    expect(await store.get(tenant, id)).toBeDefined();
    await sleep(1_200);
    expect(await store.get(tenant, id)).toBeUndefined();
  }, 10_000);
});

describe("redis run checkpoint store", () => {
  it("sets the key's TTL to the run's deadline plus retention, and a finished run's to retention", async () => {
    const redis = redisClient();
    const store = createRedisCheckpointStore({ redis, maxStateBytes: 262_144, retentionMs: 3_600_000 });
    const tenant = uniqueTenant("pttl");
    const id = executionId();
    const deadlineAt = Date.now() + 7_200_000;
    await store.create(tenant, id, sampleState({ deadlineAt }));
    const ttl = await redis.pttl(runKey(tenant, id));
    expect(Math.abs(ttl - (deadlineAt + 3_600_000 - Date.now()))).toBeLessThan(5_000);

    await store.write(tenant, id, 1, sampleState({ deadlineAt, status: "completed", next: undefined }));
    const finished = await redis.pttl(runKey(tenant, id));
    expect(Math.abs(finished - 3_600_000)).toBeLessThan(5_000);
  });

  it("reports an unreachable REST endpoint as StoreUnavailableError run_store_unavailable", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const store = createRedisCheckpointStore({
      redis: createRedisFromConfig({
        UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${port}`,
        UPSTASH_REDIS_REST_TOKEN: "x",
      }),
      maxStateBytes: 262_144,
    });
    for (const call of [
      () => store.get("acme", "ex"),
      () => store.write("acme", "ex", 1, sampleState()),
      () => store.acquireLease("acme", "ex", "me", 1_000, Date.now()),
    ]) {
      const error = await call().catch((e) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.code).toBe("run_store_unavailable");
    }
  });
});
