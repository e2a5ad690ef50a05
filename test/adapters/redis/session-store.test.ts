/**
 * One behaviour suite for both session stores: the Redis store through the real Upstash
 * client, the real bridge and a real Redis (from the local stack), and the in-process store.
 */
import { isMovaError, MovaError, StoreUnavailableError } from "../../../lib/errors.ts";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../../infra/local/stack.ts";
import { loadConfig } from "../../../lib/config.ts";
import { createMemorySessionStore } from "../../../lib/adapters/memory-session-store.ts";
import type { SessionStore } from "../../../lib/ports.ts";
import { createRedisFromConfig, createRedisSessionStore } from "../../../lib/adapters/redis/session-store.ts";
import { sampleSession, uniqueTenant } from "../../support/runtime-fixtures.ts";

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
});

afterAll(async () => {
  await stack?.stop();
});

type StoreFactory = (ttlSeconds: number) => SessionStore;

const factories: Array<[string, StoreFactory]> = [
  [
    "redis (bridge + real Redis)",
    (ttlSeconds) => {
      if (stack.sessionBackend !== "redis") throw new Error(`no Redis here: ${stack.warnings.join("; ")}`);
      return createRedisSessionStore({ redis: createRedisFromConfig(loadConfig(stack.env)), ttlSeconds });
    },
  ],
  ["memory", (ttlSeconds) => createMemorySessionStore({ ttlSeconds })],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(factories)("session store: %s", (_name, makeStore) => {
  it("creates, reads, updates and deletes a session", async () => {
    const store = makeStore(60);
    const tenant = uniqueTenant("crud");
    const created = await store.create(sampleSession(tenant));
    expect(created.version).toBe(1);
    expect(Date.parse(created.expiresAt) - Date.parse(created.updatedAt)).toBe(60_000);

    const read = await store.get(tenant, created.sessionId);
    // Empty arrays and objects survive the round trip (the Lua script never re-encodes).
    expect(read).toEqual(created);

    const { version: _v, updatedAt: _u, expiresAt: _e, ...rest } = created;
    const updated = await store.update(tenant, created.sessionId, 1, {
      ...rest,
      data: { step: 2 },
      intent: "refund",
    });
    expect(updated?.version).toBe(2);
    expect(await store.get(tenant, created.sessionId)).toEqual(updated);

    expect(await store.delete(tenant, created.sessionId)).toBe(true);
    expect(await store.get(tenant, created.sessionId)).toBeUndefined();
    expect(await store.delete(tenant, created.sessionId)).toBe(false);
    expect(await store.update(tenant, created.sessionId, 2, { ...rest, data: {} })).toBeUndefined();
  });

  it("refuses a second session with the same id", async () => {
    const store = makeStore(60);
    const tenant = uniqueTenant("dup");
    const session = sampleSession(tenant);
    await store.create(session);
    await expect(store.create({ ...session, userId: "other" })).rejects.toMatchObject({
      code: "session_conflict",
    });
    expect((await store.get(tenant, session.sessionId))?.userId).toBe("user-1");
  });

  it("answers a stale version with session_conflict and changes nothing", async () => {
    const store = makeStore(60);
    const tenant = uniqueTenant("stale");
    const created = await store.create(sampleSession(tenant, { data: { n: 0 } }));
    const { version: _v, updatedAt: _u, expiresAt: _e, ...rest } = created;
    await store.update(tenant, created.sessionId, 1, { ...rest, data: { n: 1 } });
    const before = await store.get(tenant, created.sessionId);

    const error = await store
      .update(tenant, created.sessionId, 1, { ...rest, data: { n: 99 } })
      .catch((e) => e);
    expect(error).toBeInstanceOf(MovaError);
    expect(error.code).toBe("session_conflict");
    expect(await store.get(tenant, created.sessionId)).toEqual(before);
  });

  it("loses no write when 20 updates race on one session (each retried on conflict)", async () => {
    const store = makeStore(60);
    const tenant = uniqueTenant("race");
    const created = await store.create(sampleSession(tenant, { data: { writes: [] } }));
    let conflicts = 0;
    const writer = async (n: number) => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const current = await store.get(tenant, created.sessionId);
        if (!current) throw new Error("session vanished");
        const { version, updatedAt: _u, expiresAt: _e, ...rest } = current;
        const writes = [...(current.data.writes as number[]), n];
        try {
          await store.update(tenant, created.sessionId, version, { ...rest, data: { writes } });
          return;
        } catch (error) {
          if (!isMovaError(error, "session_conflict")) throw error;
          conflicts++;
        }
      }
      throw new Error(`writer ${n} never got through`);
    };
    await Promise.all(Array.from({ length: 20 }, (_, n) => writer(n)));
    const final = await store.get(tenant, created.sessionId);
    expect([...((final?.data.writes ?? []) as number[])].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, n) => n),
    );
    expect(final?.version).toBe(21);
    // The race was real: some updates had to retry.
    expect(conflicts).toBeGreaterThan(0);
  });

  it("keeps a tenant's sessions invisible to another tenant", async () => {
    const store = makeStore(60);
    const owner = uniqueTenant("owner");
    const intruder = uniqueTenant("intruder");
    const created = await store.create(sampleSession(owner));
    const { version: _v, updatedAt: _u, expiresAt: _e, ...rest } = created;
    expect(await store.get(intruder, created.sessionId)).toBeUndefined();
    expect(
      await store.update(intruder, created.sessionId, 1, { ...rest, data: { hacked: true } }),
    ).toBeUndefined();
    expect(await store.delete(intruder, created.sessionId)).toBe(false);
    expect(await store.get(owner, created.sessionId)).toEqual(created);
  });

  it("expires a session after its TTL and renews the TTL on each update", async () => {
    const store = makeStore(2);
    const tenant = uniqueTenant("ttl");
    const created = await store.create(sampleSession(tenant));
    const { version: _v, updatedAt: _u, expiresAt: _e, ...rest } = created;
    await sleep(1_200);
    const renewed = await store.update(tenant, created.sessionId, 1, { ...rest, data: { renewed: true } });
    expect(Date.parse(renewed!.expiresAt)).toBeGreaterThan(Date.parse(created.expiresAt));
    await sleep(1_200);
    // 2.4 s after creation: alive only because the update renewed the TTL.
    expect((await store.get(tenant, created.sessionId))?.data).toEqual({ renewed: true });
    await sleep(2_100);
    expect(await store.get(tenant, created.sessionId)).toBeUndefined();
  }, 15_000);
});

describe("redis session store without Redis", () => {
  it("reports an unreachable REST endpoint as StoreUnavailableError within two seconds", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const store = createRedisSessionStore({
      redis: createRedisFromConfig({
        UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${port}`,
        UPSTASH_REDIS_REST_TOKEN: "x",
      }),
      ttlSeconds: 60,
    });
    const started = Date.now();
    const error = await store.get("acme", "s1").catch((e) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.code).toBe("session_store_unavailable");
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("reports a REST endpoint that never answers as unavailable after the request timeout", async () => {
    const silent = net.createServer(() => undefined); // accepts, never replies
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const redis = createRedisFromConfig(
        { UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${port}`, UPSTASH_REDIS_REST_TOKEN: "x" },
        { requestTimeoutMs: 300 },
      );
      const store = createRedisSessionStore({ redis, ttlSeconds: 60 });
      const started = Date.now();
      const error = await store.create(sampleSession("acme")).catch((e) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      silent.close();
    }
  });
});
