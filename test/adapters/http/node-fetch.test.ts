import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createGzip, gzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createNodeFetch } from "../../../lib/adapters/http/node-fetch.ts";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

let server: Server;
let base: string;
let handler: Handler;
let connections = 0;
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => handler(req, Buffer.concat(chunks).toString("utf8"), res));
  });
  // Announced as `Keep-Alive: timeout=2`: the client must drop idle sockets a second before.
  server.keepAliveTimeout = 2_000;
  server.on("connection", (socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  connections = 0;
  handler = (_req, _body, res) => res.end("ok");
});

const echo: Handler = (req, body, res) => {
  res.writeHead(201, "Made", { "content-type": "application/json", "x-request-id": "req_1" });
  res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
};

describe("createNodeFetch", () => {
  it("sends the method, headers and body and reads status, headers and JSON like fetch", async () => {
    handler = echo;
    const fetch = createNodeFetch();
    const headers = new Headers({ Authorization: "Bearer k", "Content-Type": "application/json" });
    const response = await fetch(`${base}/v1/chat?x=1`, { method: "post", headers, body: '{"a":"ä"}' });
    expect([response.ok, response.status, response.statusText]).toEqual([true, 201, "Made"]);
    expect(response.headers.get("X-Request-Id")).toBe("req_1");
    expect(response.url).toBe(`${base}/v1/chat?x=1`);
    const sent = (await response.json()) as {
      method: string;
      url: string;
      headers: Record<string, string>;
      body: string;
    };
    expect(sent.method).toBe("POST");
    expect(sent.url).toBe("/v1/chat?x=1");
    expect(sent.headers.authorization).toBe("Bearer k");
    expect(sent.headers["content-length"]).toBe(String(Buffer.byteLength('{"a":"ä"}')));
    expect(sent.body).toBe('{"a":"ä"}');
    expect(response.bodyUsed).toBe(true);
    await expect(response.text()).rejects.toThrow(TypeError);
  });

  it("reads response headers as Headers does: any case, repeats joined, in name order", async () => {
    handler = (_req, _body, res) => {
      res.setHeader("X-Zeta", "z");
      res.setHeader("Set-Cookie", ["a=1", "b=2"]);
      res.setHeader("X-Many", ["1", "2"]);
      res.end("ok");
    };
    const { headers } = await createNodeFetch()(base);
    expect(headers.get("x-zeta")).toBe("z");
    expect(headers.get("X-MANY")).toBe("1, 2");
    expect(headers.has("x-missing")).toBe(false);
    expect(headers.getSetCookie()).toEqual(["a=1", "b=2"]);
    const names = [...headers.entries()].map(([name]) => name);
    expect(names).toEqual([...names].sort());
    expect(names).toContain("x-zeta");
  });

  it("accepts headers as a record or as pairs", async () => {
    handler = echo;
    const fetch = createNodeFetch();
    const fromRecord = (await (await fetch(base, { headers: { "X-One": "1" } })).json()) as {
      headers: Record<string, string>;
    };
    const fromPairs = (await (await fetch(base, { headers: [["X-Two", "2"]] })).json()) as {
      headers: Record<string, string>;
    };
    expect([fromRecord.headers["x-one"], fromPairs.headers["x-two"]]).toEqual(["1", "2"]);
  });

  it("returns an error status as a response that is not ok, with its body", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(429, { "retry-after-ms": "5" });
      res.end("slow down");
    };
    const response = await createNodeFetch()(base);
    expect([response.ok, response.status, response.headers.get("retry-after-ms")]).toEqual([false, 429, "5"]);
    expect(await response.text()).toBe("slow down");
  });

  it("offers the body as a stream, and none for a 204", async () => {
    handler = (_req, _body, res) => res.end("streamed");
    const fetch = createNodeFetch();
    const streamed = await fetch(base);
    expect(streamed.body).toBe(streamed.body);
    expect(await new Response(streamed.body).text()).toBe("streamed");

    handler = (_req, _body, res) => {
      res.writeHead(204);
      res.end();
    };
    const empty = await fetch(base);
    expect(empty.body).toBeNull();
    expect(await empty.text()).toBe("");
  });

  it("decodes a gzip body the server sent unasked", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-encoding": "gzip", "content-type": "application/json" });
      res.end(gzipSync(JSON.stringify({ answer: 42 })));
    };
    expect(await (await createNodeFetch()(base)).json()).toEqual({ answer: 42 });
  });

  it("does not follow a redirect, so credentials never go to another host", async () => {
    let hits = 0;
    handler = (_req, _body, res) => {
      hits += 1;
      res.writeHead(302, { location: "http://example.invalid/steal" });
      res.end();
    };
    const response = await createNodeFetch()(base, { headers: { authorization: "Bearer k" } });
    expect([response.status, response.ok, hits]).toEqual([302, false, 1]);
  });

  it("rejects with an AbortError when aborted before or during the request", async () => {
    const fetch = createNodeFetch();
    const before = new AbortController();
    before.abort();
    await expect(fetch(base, { signal: before.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(connections).toBe(0);

    handler = (_req, _body, res) => setTimeout(() => res.end("late"), 2_000);
    const during = new AbortController();
    setTimeout(() => during.abort(), 30);
    const started = Date.now();
    await expect(fetch(base, { signal: during.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("rejects with the socket's error code when the connection fails or breaks mid-response", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(createNodeFetch()(`http://127.0.0.1:${closedPort}/`)).rejects.toMatchObject({
      code: "ECONNREFUSED",
    });

    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-length": "100" });
      res.write("partial");
      setTimeout(() => res.socket?.destroy(), 10);
    };
    await expect(createNodeFetch()(base)).rejects.toMatchObject({ code: "ECONNRESET" });
  });

  it("reuses one connection for sequential calls, and drops it before the server's keep-alive ends", async () => {
    const fetch = createNodeFetch();
    for (let index = 0; index < 3; index += 1) expect(await (await fetch(base)).text()).toBe("ok");
    expect(connections).toBe(1);
    // The server announced timeout=2 (s): the idle socket is closed by the client after 1 s, so a
    // call 1.5 s later opens a new connection instead of writing into one the server may be closing.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await (await fetch(base)).text()).toBe("ok");
    expect(connections).toBe(2);
  });

  it("hands an event stream's body over as it arrives: the first event is read before the server writes the next", async () => {
    let writeRest: () => void = () => undefined;
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
      res.write("data: one\n\n");
      writeRest = () => res.end("data: two\n\n");
    };
    const response = await createNodeFetch()(`${base}/v1/chat/completions`);
    expect([response.status, response.url]).toEqual([200, `${base}/v1/chat/completions`]);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    // The server holds its second event until the client has the first.
    expect(decoder.decode((await reader.read()).value)).toBe("data: one\n\n");
    writeRest();
    let rest = "";
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      rest += decoder.decode(chunk.value);
    expect(rest).toBe("data: two\n\n");
  });

  it("decodes a gzip event stream, and errors its body on an abort or a broken connection mid-stream", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream", "content-encoding": "gzip" });
      const gzip = createGzip();
      gzip.pipe(res);
      gzip.end("data: zipped\n\n");
    };
    expect(await (await createNodeFetch()(base)).text()).toBe("data: zipped\n\n");

    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
    };
    const aborted = new AbortController();
    const reader = (
      (await createNodeFetch()(base, { signal: aborted.signal })).body as ReadableStream
    ).getReader();
    await reader.read();
    aborted.abort();
    await expect(reader.read()).rejects.toMatchObject({ name: "AbortError" });

    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      setTimeout(() => res.socket?.destroy(), 10);
    };
    const broken = ((await createNodeFetch()(base)).body as ReadableStream).getReader();
    await broken.read();
    await expect(broken.read()).rejects.toMatchObject({ code: "ECONNRESET" });
  });

  it("hands a body it cannot send itself (a stream) to the built-in fetch", async () => {
    handler = echo;
    const body = new Blob(["from a blob"]);
    const response = await createNodeFetch()(base, { method: "POST", body });
    expect(((await response.json()) as { body: string }).body).toBe("from a blob");
    expect(response).toBeInstanceOf(Response);
  });
});
