// The Upstash-REST-compatible bridge (@humanwhocodes/upstash-redis-server) as a child
// process of the local stack. A child rather than in-process because the bridge opens an
// ioredis connection it never exposes or closes: in-process it would keep reconnecting
// (and logging) after stop(). Killing the child closes everything.
//
// Env: URS_TOKEN, REDIS_URL, BRIDGE_PORT (0 = any). Prints `{"port":N}` once listening;
// exits when its parent goes away (stdin closes) or on SIGTERM/SIGINT.
import { serve } from "@hono/node-server";
import { createApp } from "@humanwhocodes/upstash-redis-server";
import { Redis } from "ioredis";

// The bridge's ioredis client (created inside createApp, which takes no options) would by
// default queue commands while Redis is down and send them once it is back, tens of seconds
// after the REST caller gave up on them: a request answered as failed would then write
// late (a session created, updated or deleted after a 503). Upstash runs a command when it
// is received or not at all, so here too: with no offline queue, a command while Redis is
// down fails at once (the caller sees an error reply) and is never sent later.
// `defaultOptions` is ioredis's own table of defaults (not a documented option): ioredis is a
// devDependency of ours, and package.json's `overrides` give the bridge that same ioredis, so
// both import the same module, and test/adapters/redis/redis-dies.test.ts fails if a late write
// comes back.
Redis.defaultOptions = { ...Redis.defaultOptions, enableOfflineQueue: false };

const token = process.env.URS_TOKEN ?? "";
const app = createApp({ token, redisUrl: process.env.REDIS_URL });
// Without the offline queue, a command before the first connection fails too: announce the
// port only once Redis answers a PING (and give up, rather than linger, if it never does).
for (const deadline = Date.now() + 10_000; ; ) {
  if (Date.now() > deadline) {
    process.stderr.write(`no PONG from ${process.env.REDIS_URL} within 10 s\n`);
    process.exit(1);
  }
  const reply = await app
    .fetch(
      new Request("http://bridge/", {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: '["PING"]',
      }),
    )
    .then((response) => response.json())
    .catch(() => undefined);
  // Anything but "not connected yet" (PONG, or e.g. NOAUTH) ends the wait; the parent's
  // own PING through the port then reports what it got.
  if (reply && !/enableOfflineQueue/.test(String(reply.error ?? ""))) break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
const server = serve(
  { fetch: app.fetch, port: Number(process.env.BRIDGE_PORT ?? 0), hostname: "127.0.0.1" },
  (info) => {
    process.stdout.write(`${JSON.stringify({ port: info.port })}\n`);
  },
);
const exit = () => {
  server.close();
  process.exit(0);
};
process.stdin.on("end", exit);
process.stdin.on("error", exit);
process.stdin.resume();
process.on("SIGTERM", exit);
process.on("SIGINT", exit);
