// The Upstash-REST-compatible bridge (@humanwhocodes/upstash-redis-server) as a child
// process of the local stack. A child rather than in-process because the bridge opens an
// ioredis connection it never exposes or closes: in-process it would keep reconnecting
// (and logging) after stop(). Killing the child closes everything.
//
// Env: URS_TOKEN, REDIS_URL, BRIDGE_PORT (0 = any). Prints `{"port":N}` once listening;
// exits when its parent goes away (stdin closes) or on SIGTERM/SIGINT.
import { serve } from "@hono/node-server";
import { createApp } from "@humanwhocodes/upstash-redis-server";

const app = createApp({ token: process.env.URS_TOKEN ?? "", redisUrl: process.env.REDIS_URL });
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
