/**
 * The Redis behind the Upstash bridge dies while the bridge stays up: a private
 * redis-server (its own port, keeping nothing) behind the bridge the local stack starts,
 * the real API handler on top. Killed with SIGKILL mid-life, the API must answer reads and
 * writes of a session with 503 session_store_unavailable within a bounded time (not hang,
 * not 500, not succeed silently); restarted empty on the same port, the session is a 404
 * and nothing the failed requests sent was written late.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalStack } from "../../../infra/local/stack.ts";
import {
  findRedisServer,
  type RedisProcess,
  startRedisOnFreePort,
  startRedisProcess,
} from "../../support/redis-process.ts";
import {
  type ApiFixture,
  invoke,
  shopDocument,
  startApiFixture,
  v2Event,
} from "../../support/api-fixture.ts";

const redisBinary = findRedisServer();
if (!redisBinary) {
  console.warn("redis-dies.test.ts skipped: redis-server is not on the PATH (CI installs it)");
}

/** A request through the handler must come back within this long, whatever the store does. */
const ANSWER_WITHIN_MS = 15_000;

let redis: RedisProcess | undefined;
let fixture: ApiFixture | undefined;
let stack: LocalStack | undefined;

beforeAll(async () => {
  if (!redisBinary) return;
  redis = await startRedisOnFreePort(redisBinary);
  // The bridge started as the local stack starts it, in front of our Redis (none of its own).
  fixture = await startApiFixture({}, { redisUrl: redis.url, noRedisServer: true });
  stack = fixture.stack;
  const stored = await call("PUT", "/documents/shop", { body: shopDocument("http://127.0.0.1:9") });
  expect(stored.statusCode).toBe(201);
});

afterAll(async () => {
  // The bridge (in the stack) before the Redis it talks to.
  await fixture?.close().catch(() => undefined);
  await redis?.kill().catch(() => undefined);
});

/** One request through the handler, timed, failing clearly instead of hanging. */
async function call(method: string, path: string, options: { body?: unknown } = {}) {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${method} ${path} did not answer within ${ANSWER_WITHIN_MS} ms`)),
      ANSWER_WITHIN_MS,
    );
  });
  try {
    const event = v2Event(method, path, {
      headers: { authorization: `Bearer ${fixture!.devKey}` },
      ...options,
    });
    const result = await Promise.race([invoke(fixture!.handler, event), hung]);
    return { ...result, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** A command through the bridge, the way @upstash/redis sends one. */
async function bridge(command: unknown[]): Promise<{ result?: unknown; error?: string }> {
  const reply = await fetch(stack!.env.UPSTASH_REDIS_REST_URL!, {
    method: "POST",
    headers: {
      authorization: `Bearer ${stack!.env.UPSTASH_REDIS_REST_TOKEN}`,
      "content-type": "application/json",
    },
    body: JSON.stringify(command),
    signal: AbortSignal.timeout(3_000),
  });
  return (await reply.json()) as { result?: unknown; error?: string };
}

/** Waits until the bridge reaches Redis again (its client reconnects by itself). */
async function bridgeReachesRedis(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const reply = await bridge(["PING"]);
      if (reply.result === "PONG") return;
      last = reply;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the bridge did not reach the restarted Redis within ${timeoutMs} ms: ${String(last)}`);
}

describe.skipIf(!redisBinary)("the Redis behind the bridge dies while the bridge stays up", () => {
  it("answers 503 session_store_unavailable in bounded time, then 404 once Redis is back empty", async () => {
    expect(stack!.sessionBackend).toBe("redis");

    // A session created and used through the API while Redis is alive.
    const created = await call("POST", "/sessions", { body: { document: "shop", userId: "u1" } });
    expect(created.statusCode).toBe(201);
    const { sessionId } = created.json;
    const hello = await call("POST", `/sessions/${sessionId}/messages`, { body: { text: "Hello there" } });
    expect(hello.statusCode).toBe(200);
    expect(hello.json.status).toBe("responded");
    const before = await call("GET", `/sessions/${sessionId}`);
    expect(before.statusCode).toBe(200);
    expect(before.json.sessionId).toBe(sessionId);

    // Redis dies; the bridge process stays up and keeps answering HTTP.
    const port = redis!.port;
    await redis!.kill();
    redis = undefined;
    // The bridge is still up: it answers HTTP, with an error instead of a result.
    const ping = await bridge(["PING"]);
    expect(ping.result).toBeUndefined();
    expect(ping.error).toEqual(expect.any(String));

    const outage = [
      await call("GET", `/sessions/${sessionId}`),
      await call("POST", `/sessions/${sessionId}/messages`, { body: { text: "order" } }),
      await call("POST", "/sessions", { body: { document: "shop", userId: "u2" } }),
      await call("DELETE", `/sessions/${sessionId}`),
    ];
    for (const response of outage) {
      expect(response.statusCode).toBe(503);
      expect(response.json.error.code).toBe("session_store_unavailable");
      // The client's bound: 3 attempts of at most 1.5 s each plus short backoffs.
      expect(response.ms).toBeLessThan(8_000);
    }
    console.info(
      `redis-dies: 503 answered in ${outage.map((r) => r.ms).join(", ")} ms (read, message, create, delete)`,
    );

    // Redis again on the same port, empty (it keeps nothing).
    redis = await startRedisProcess(redisBinary!, port);
    await bridgeReachesRedis(20_000);
    // Nothing the failed requests sent reached Redis late (e.g. from a queue in the bridge).
    expect(await bridge(["DBSIZE"])).toEqual({ result: 0 });

    const gone = await call("GET", `/sessions/${sessionId}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json.error.code).toBe("not_found");
    const message = await call("POST", `/sessions/${sessionId}/messages`, { body: { text: "hello" } });
    expect(message.statusCode).toBe(404);
    expect(await bridge(["DBSIZE"])).toEqual({ result: 0 });

    // And the store works again: a new session is created and read back.
    const again = await call("POST", "/sessions", { body: { document: "shop", userId: "u1" } });
    expect(again.statusCode).toBe(201);
    expect((await call("GET", `/sessions/${again.json.sessionId}`)).statusCode).toBe(200);
  }, 120_000);
});
