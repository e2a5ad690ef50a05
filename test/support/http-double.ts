/**
 * A real HTTP server on loopback that stands in for a third-party API in tests: routes
 * answer with scripted statuses, bodies and delays, and every request is recorded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: unknown;
  /** The client gave up on the request (closed it) before its answer was sent. */
  abandoned?: boolean;
}

export interface ScriptedReply {
  status?: number;
  /** An object is sent as JSON; a string is sent as it is. */
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Close the connection without answering. */
  destroy?: boolean;
  /** The body as these parts, written one after the other `partDelayMs` apart (a stream). */
  parts?: string[];
  partDelayMs?: number;
}

export type RouteHandler = (request: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;

export interface HttpDouble {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** TCP connections accepted so far (keep-alive clients reuse one for sequential requests). */
  readonly connections: number;
  /** Sets the handler of `METHOD /path` (path without the query string). */
  route(method: string, path: string, handler: RouteHandler | ScriptedReply): void;
  /** Replies to the next requests of a route in order, then falls back to the route's handler. */
  queue(method: string, path: string, ...replies: ScriptedReply[]): void;
  close(): Promise<void>;
}

export async function startHttpDouble(): Promise<HttpDouble> {
  const routes = new Map<string, RouteHandler>();
  const queues = new Map<string, ScriptedReply[]>();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<import("node:net").Socket>();
  let connections = 0;

  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://localhost");
    let json: unknown;
    try {
      json = body ? JSON.parse(body) : undefined;
    } catch {
      json = undefined;
    }
    const recorded: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      json,
    };
    requests.push(recorded);
    const key = `${recorded.method} ${recorded.path}`;
    const queued = queues.get(key)?.shift();
    const handler = routes.get(key);
    const reply: ScriptedReply =
      queued ?? (handler ? await handler(recorded) : { status: 404, body: { error: "no route" } });
    if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
    if (res.destroyed || req.socket.destroyed) recorded.abandoned = true;
    if (reply.destroy) {
      req.socket.destroy();
      return;
    }
    if (reply.parts !== undefined) {
      res.writeHead(reply.status ?? 200, { "content-type": "text/plain; charset=utf-8", ...reply.headers });
      for (const [index, part] of reply.parts.entries()) {
        if (index > 0 && reply.partDelayMs)
          await new Promise((resolve) => setTimeout(resolve, reply.partDelayMs));
        if (res.destroyed) return;
        res.write(part);
      }
      res.end();
      return;
    }
    const isText = typeof reply.body === "string";
    const payload =
      reply.body === undefined ? "" : isText ? (reply.body as string) : JSON.stringify(reply.body);
    res.writeHead(reply.status ?? 200, {
      "content-type": isText ? "text/plain; charset=utf-8" : "application/json",
      ...reply.headers,
    });
    res.end(payload);
  });
  server.on("connection", (socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get connections() {
      return connections;
    },
    route(method, path, handler) {
      routes.set(`${method} ${path}`, typeof handler === "function" ? handler : () => handler);
    },
    queue(method, path, ...replies) {
      const key = `${method} ${path}`;
      queues.set(key, [...(queues.get(key) ?? []), ...replies]);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
