/**
 * One behaviour suite for both run event streams: the Redis stream through the real Upstash
 * client, the real bridge and a real Redis (from the local stack), and the in-process stream.
 * Order, resumption after an id, the exact length bound, the expiry, tenants apart.
 */
import net from "node:net";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../../infra/local/stack.ts";
import { loadConfig } from "../../../lib/config.ts";
import { createMemoryRunEventStream } from "../../../lib/adapters/memory-run-event-stream.ts";
import { createRedisRunEventStream } from "../../../lib/adapters/redis/run-event-stream.ts";
import { createRedisFromConfig } from "../../../lib/adapters/redis/session-store.ts";
import { runEventsKey } from "../../../lib/adapters/run-events.ts";
import type { RunEvent, RunEventStream } from "../../../lib/ports.ts";
import { StoreUnavailableError } from "../../../lib/errors.ts";
import { uniqueTenant } from "../../support/runtime-fixtures.ts";

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
});

afterAll(async () => {
  await stack?.stop();
});

interface StreamOptions {
  maxLen?: number;
  ttlSeconds?: number;
  now?: () => number;
}

const redisClient = () => {
  if (stack.sessionBackend !== "redis") throw new Error(`no Redis here: ${stack.warnings.join("; ")}`);
  return createRedisFromConfig(loadConfig(stack.env));
};

const factories: Array<[string, (options?: StreamOptions) => RunEventStream]> = [
  [
    "redis (bridge + real Redis)",
    (options = {}) => createRedisRunEventStream({ redis: redisClient(), ...options }),
  ],
  ["memory", (options = {}) => createMemoryRunEventStream(options)],
];

const started = (n: number): RunEvent => ({
  type: "step_started",
  stepId: `s${n}`,
  action: "tool_api",
  visit: 1,
  at: new Date().toISOString(),
});

const executionId = () => `ex_${randomUUID()}`;

/** Appends one event; its id. */
const appendOne = async (
  stream: RunEventStream,
  tenant: string,
  id: string,
  event: RunEvent,
): Promise<string> => (await stream.append(tenant, id, [event]))[0] as string;

describe.each(factories)("run event stream: %s", (_name, makeStream) => {
  it("answers events in the order appended, with increasing ids, and from after a given id", async () => {
    const stream = makeStream();
    const tenant = uniqueTenant("order");
    const id = executionId();
    expect(await stream.read(tenant, id)).toEqual([]);
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push(await appendOne(stream, tenant, id, started(n)));
    expect(new Set(ids).size).toBe(5);
    const all = await stream.read(tenant, id);
    expect(all.map((e) => e.id)).toEqual(ids);
    expect(all.map((e) => (e.event as { stepId: string }).stepId)).toEqual(["s0", "s1", "s2", "s3", "s4"]);
    // Exclusive of the id given: what a follower resuming with Last-Event-ID has not seen.
    expect((await stream.read(tenant, id, { after: ids[1] })).map((e) => e.id)).toEqual(ids.slice(2));
    expect(await stream.read(tenant, id, { after: ids[4] })).toEqual([]);
    expect((await stream.read(tenant, id, { limit: 2 })).map((e) => e.id)).toEqual(ids.slice(0, 2));
    // The events come back as written (nested values, empty arrays and objects included).
    const finished: RunEvent = {
      type: "step_finished",
      step: {
        id: "call",
        action: "tool_api",
        status: "succeeded",
        attempts: 1,
        startedAt: new Date().toISOString(),
        durationMs: 3,
        output: { list: [], map: {}, text: "line\nbreak", n: 1 },
      },
      at: new Date().toISOString(),
    };
    const lastId = await appendOne(stream, tenant, id, finished);
    expect(await stream.read(tenant, id, { after: ids[4] })).toEqual([{ id: lastId, event: finished }]);
  });

  it("appends a batch in one call, in its order, the bound applied within it", async () => {
    const stream = makeStream({ maxLen: 10 });
    const tenant = uniqueTenant("batch");
    const id = executionId();
    expect(await stream.append(tenant, id, [])).toEqual([]);
    const ids = await stream.append(
      tenant,
      id,
      Array.from({ length: 15 }, (_, n) => started(n)),
    );
    expect(ids).toHaveLength(15);
    const kept = await stream.read(tenant, id);
    expect(kept.map((e) => e.id)).toEqual(ids.slice(5));
    expect(kept.map((e) => (e.event as { stepId: string }).stepId)).toEqual(
      Array.from({ length: 10 }, (_, n) => `s${n + 5}`),
    );
  });

  it("keeps only the last maxLen events", async () => {
    const stream = makeStream({ maxLen: 10 });
    const tenant = uniqueTenant("bound");
    const id = executionId();
    const ids: string[] = [];
    for (let n = 0; n < 25; n++) ids.push(await appendOne(stream, tenant, id, started(n)));
    const kept = await stream.read(tenant, id, { limit: 100 });
    expect(kept).toHaveLength(10);
    expect(kept.map((e) => e.id)).toEqual(ids.slice(15));
    // A follower behind the trimmed part gets what is left.
    expect((await stream.read(tenant, id, { after: ids[2] })).map((e) => e.id)).toEqual(ids.slice(15));
  });

  it("keeps tenants and runs apart, a tenant holding ':' included", async () => {
    const stream = makeStream();
    const tenant = uniqueTenant("apart");
    const id = executionId();
    await appendOne(stream, tenant, id, started(1));
    expect(await stream.read(uniqueTenant("other"), id)).toEqual([]);
    expect(await stream.read(tenant, executionId())).toEqual([]);
    // `a:b` + `c` must not be `a` + `b:c`.
    const c = executionId();
    await appendOne(stream, `${tenant}:b`, c, started(2));
    expect(await stream.read(tenant, `b:${c}`)).toEqual([]);
    expect(await stream.read(`${tenant}:b`, c)).toHaveLength(1);
  });

  it("refuses a malformed id with invalid_event_id", async () => {
    const stream = makeStream();
    for (const after of ["abc", "1-", "-1", "1-2-3", "+", "(1-0", "1-0 "]) {
      await expect(stream.read("acme", executionId(), { after })).rejects.toMatchObject({
        code: "invalid_event_id",
      });
    }
  });
});

describe("run event stream expiry", () => {
  it("redis: each append sets the stream's TTL", async () => {
    const prefix = `mova:test-events:${randomUUID()}:`;
    const redis = redisClient();
    const stream = createRedisRunEventStream({ redis, ttlSeconds: 120, keyPrefix: prefix });
    const tenant = uniqueTenant("ttl");
    const id = executionId();
    await appendOne(stream, tenant, id, started(1));
    const ttl = await redis.pttl(runEventsKey(tenant, id, prefix));
    expect(ttl).toBeGreaterThan(110_000);
    expect(ttl).toBeLessThanOrEqual(120_000);
    await redis.pexpire(runEventsKey(tenant, id, prefix), 50);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await stream.read(tenant, id)).toEqual([]);
  });

  it("memory: a stream past its TTL is gone, and the TTL runs from the last append", async () => {
    let now = 1_000_000;
    const stream = createMemoryRunEventStream({ ttlSeconds: 60, now: () => now });
    await appendOne(stream, "acme", "ex", started(1));
    now += 59_000;
    await appendOne(stream, "acme", "ex", started(2));
    now += 59_000;
    expect(await stream.read("acme", "ex")).toHaveLength(2);
    now += 1_000;
    expect(await stream.read("acme", "ex")).toEqual([]);
  });

  it("reports an unreachable REST endpoint as StoreUnavailableError run_events_unavailable", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const stream = createRedisRunEventStream({
      redis: createRedisFromConfig({
        UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${port}`,
        UPSTASH_REDIS_REST_TOKEN: "x",
      }),
    });
    for (const call of [() => appendOne(stream, "acme", "ex", started(1)), () => stream.read("acme", "ex")]) {
      const error = await call().catch((e) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.code).toBe("run_events_unavailable");
    }
  });
});
