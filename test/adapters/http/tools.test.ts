import { MovaError } from "../../../lib/errors.ts";
import dc from "node:diagnostics_channel";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createHttpTools,
  createToolsFromConfig,
  withoutAddresses,
} from "../../../lib/adapters/http/tools.ts";
import { loadConfig } from "../../../lib/config.ts";
import type { ToolRequest } from "../../../lib/ports.ts";
import { type HttpDouble, startHttpDouble } from "../../support/http-double.ts";

let api: HttpDouble;
beforeAll(async () => {
  api = await startHttpDouble();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  api.requests.length = 0;
});

/** Tools allowed to reach the loopback double. */
const loopbackTools = (options: Parameters<typeof createHttpTools>[0] = {}) =>
  createHttpTools({ allowHosts: ["127.0.0.1"], ...options });

const get = (path: string, extra: Partial<ToolRequest> = {}): ToolRequest => ({
  toolId: "tool",
  method: "GET",
  url: `${api.url}${path}`,
  headers: {},
  ...extra,
});

async function failure(promise: Promise<unknown>): Promise<MovaError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(MovaError);
  return error as MovaError;
}

/** Counts every client TCP socket the process opens while `action` runs. */
async function socketsOpenedDuring(action: () => Promise<unknown>): Promise<number> {
  let opened = 0;
  const onSocket = () => {
    opened += 1;
  };
  dc.subscribe("net.client.socket", onSocket);
  try {
    await action();
  } finally {
    dc.unsubscribe("net.client.socket", onSocket);
  }
  return opened;
}

describe("createHttpTools: requests", () => {
  it("sends GET parameters as the query string, added to any already in the URL", async () => {
    api.route("GET", "/weather", { body: { temp_c: 21 } });
    const response = await loopbackTools().call(
      get("/weather?units=metric", { query: { q: "Kyiv & Lviv", lang: "uk" } }),
    );
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ temp_c: 21 });
    expect(response.headers["content-type"]).toBe("application/json");
    expect(api.requests[0]?.query).toEqual({ units: "metric", q: "Kyiv & Lviv", lang: "uk" });
  });

  it("sends the POST body as JSON with its content type", async () => {
    api.route("POST", "/orders", { status: 201, body: { id: 7 } });
    const response = await loopbackTools().call({
      toolId: "orders",
      method: "POST",
      url: `${api.url}/orders`,
      headers: {},
      body: { item: "чай", quantity: 2 },
    });
    expect(response).toMatchObject({ status: 201, body: { id: 7 } });
    const received = api.requests[0];
    expect(received?.method).toBe("POST");
    expect(received?.headers["content-type"]).toBe("application/json");
    expect(received?.json).toEqual({ item: "чай", quantity: 2 });
    expect(Number(received?.headers["content-length"])).toBe(Buffer.byteLength(received?.body ?? ""));
  });

  it("sends PUT and PATCH bodies too, and a DELETE with its query", async () => {
    api.route("PUT", "/r", { body: {} });
    api.route("PATCH", "/r", { body: {} });
    api.route("DELETE", "/r", { status: 204 });
    const tools = loopbackTools();
    await tools.call({ toolId: "t", method: "PUT", url: `${api.url}/r`, headers: {}, body: { a: 1 } });
    await tools.call({ toolId: "t", method: "PATCH", url: `${api.url}/r`, headers: {}, body: [1, 2] });
    const deleted = await tools.call({
      toolId: "t",
      method: "DELETE",
      url: `${api.url}/r`,
      headers: {},
      query: { id: "9" },
    });
    expect(api.requests.map((r) => [r.method, r.json ?? r.query])).toEqual([
      ["PUT", { a: 1 }],
      ["PATCH", [1, 2]],
      ["DELETE", { id: "9" }],
    ]);
    expect(deleted.status).toBe(204);
  });

  it("keeps a content type the tool sets", async () => {
    api.route("POST", "/vnd", { body: {} });
    await loopbackTools().call({
      toolId: "t",
      method: "POST",
      url: `${api.url}/vnd`,
      headers: { "Content-Type": "application/vnd.api+json" },
      body: { data: 1 },
    });
    expect(api.requests[0]?.headers["content-type"]).toBe("application/vnd.api+json");
  });

  it("sends the authentication headers exactly as given", async () => {
    api.route("GET", "/secure", { body: { ok: true } });
    await loopbackTools().call(
      get("/secure", {
        headers: { Authorization: "Bearer abc.def", "X-Api-Key": "k-123", Accept: "application/xml" },
      }),
    );
    const headers = api.requests[0]?.headers ?? {};
    expect(headers.authorization).toBe("Bearer abc.def");
    expect(headers["x-api-key"]).toBe("k-123");
    expect(headers.accept).toBe("application/xml");
    expect(headers["user-agent"]).toBe("mova-serverless/0.1");
  });

  it("sends the request's idempotency key as the Idempotency-Key header, unless the tool sets its own", async () => {
    api.route("POST", "/charge", { body: { ok: true } });
    api.route("GET", "/charge-free", { body: { ok: true } });
    const charge = (headers: Record<string, string>): ToolRequest => ({
      toolId: "t",
      method: "POST",
      url: `${api.url}/charge`,
      headers,
      body: { amount: 1 },
      idempotencyKey: "run-key-1",
    });
    await loopbackTools().call(charge({}));
    await loopbackTools().call(charge({ "idempotency-KEY": "the-tool's-own" }));
    await loopbackTools().call(get("/charge-free"));
    expect(api.requests.map((request) => request.headers["idempotency-key"])).toEqual([
      "run-key-1",
      "the-tool's-own",
      undefined,
    ]);
  });

  it("returns text bodies as text and JSON bodies parsed, by content type", async () => {
    api.route("GET", "/text", { body: "plain words" });
    api.route("GET", "/problem", {
      body: '{"a":1}',
      headers: { "content-type": "application/problem+json" },
    });
    api.route("GET", "/json-as-text", { body: '{"a":1}', headers: { "content-type": "text/plain" } });
    api.route("GET", "/empty-json", {
      status: 200,
      body: "",
      headers: { "content-type": "application/json" },
    });
    const tools = loopbackTools();
    expect((await tools.call(get("/text"))).body).toBe("plain words");
    expect((await tools.call(get("/problem"))).body).toEqual({ a: 1 });
    expect((await tools.call(get("/json-as-text"))).body).toBe('{"a":1}');
    expect((await tools.call(get("/empty-json"))).body).toBeNull();
  });

  it("decodes text in the charset the response names", async () => {
    api.route("GET", "/latin1", {
      body: "café",
      headers: { "content-type": "text/plain; charset=iso-8859-1" },
    });
    // The double writes strings as UTF-8, so the declared charset turns "é"'s two bytes into two characters.
    const response = await loopbackTools().call(get("/latin1"));
    expect(typeof response.body).toBe("string");
    expect(response.body).toBe(new TextDecoder("iso-8859-1").decode(Buffer.from("café", "utf8")));
  });

  it("refuses JSON that does not parse with tool_bad_response, not retryable", async () => {
    api.route("GET", "/broken", { body: '{"a": ', headers: { "content-type": "application/json" } });
    const error = await failure(loopbackTools().call(get("/broken")));
    expect([error.code, error.retryable]).toEqual(["tool_bad_response", false]);
  });
});

describe("createHttpTools: statuses and failures", () => {
  it("throws a non-retryable tool_http_status on 404 with the status", async () => {
    api.route("GET", "/missing", { status: 404, body: { error: "nope" } });
    const error = await failure(loopbackTools().call(get("/missing")));
    expect([error.code, error.retryable, error.status]).toEqual(["tool_http_status", false, 404]);
  });

  it("throws a retryable tool_http_status on 503 and 429", async () => {
    api.route("GET", "/busy", { status: 503, body: "try later" });
    api.route("GET", "/limited", { status: 429, body: { error: "slow down" } });
    const tools = loopbackTools();
    const busy = await failure(tools.call(get("/busy")));
    expect([busy.code, busy.retryable, busy.status]).toEqual(["tool_http_status", true, 503]);
    const limited = await failure(tools.call(get("/limited")));
    expect([limited.code, limited.retryable, limited.status]).toEqual(["tool_http_status", true, 429]);
  });

  it("does not follow redirects", async () => {
    api.route("GET", "/moved", {
      status: 302,
      headers: { location: "http://169.254.169.254/latest/meta-data" },
    });
    const error = await failure(loopbackTools().call(get("/moved")));
    expect([error.code, error.status]).toEqual(["tool_http_status", 302]);
    expect(api.requests).toHaveLength(1);
  });

  it("times out a slow answer with a retryable tool_timeout", async () => {
    api.route("GET", "/slow", { delayMs: 1_500, body: { late: true } });
    const started = Date.now();
    const error = await failure(loopbackTools().call(get("/slow", { timeoutMs: 100 })));
    expect([error.code, error.retryable]).toEqual(["tool_timeout", true]);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("uses the default timeout when the request gives none", async () => {
    api.route("GET", "/slow-default", { delayMs: 1_500, body: {} });
    const error = await failure(loopbackTools({ defaultTimeoutMs: 100 }).call(get("/slow-default")));
    expect(error.code).toBe("tool_timeout");
  });

  it("reports a connection the server destroys as a retryable tool_network", async () => {
    api.route("POST", "/drop", { destroy: true });
    const error = await failure(
      loopbackTools().call({ toolId: "t", method: "POST", url: `${api.url}/drop`, headers: {}, body: {} }),
    );
    expect([error.code, error.retryable]).toEqual(["tool_network", true]);
  });

  it("reports a refused connection as a retryable tool_network", async () => {
    const closed = await startHttpDouble();
    const url = `${closed.url}/x`;
    await closed.close();
    const error = await failure(loopbackTools().call(get("", { url })));
    expect([error.code, error.retryable]).toEqual(["tool_network", true]);
    expect(error.message).toContain("ECONNREFUSED");
  });

  it("refuses a streamed response over the cap with tool_response_too_large, not retryable", async () => {
    api.route("GET", "/big", { body: "x".repeat(64 * 1024) });
    const error = await failure(loopbackTools({ maxResponseBytes: 16 * 1024 }).call(get("/big")));
    expect([error.code, error.retryable]).toEqual(["tool_response_too_large", false]);
  });

  it("refuses on the declared content-length before reading the body", async () => {
    const body = "y".repeat(5_000);
    api.route("GET", "/declared", { body, headers: { "content-length": String(body.length) } });
    const error = await failure(loopbackTools({ maxResponseBytes: 1_000 }).call(get("/declared")));
    expect(error.code).toBe("tool_response_too_large");
    expect(error.message).toContain("5000 bytes declared");
  });

  it("accepts a response exactly at the cap", async () => {
    api.route("GET", "/exact", { body: "z".repeat(1_000) });
    expect((await loopbackTools({ maxResponseBytes: 1_000 }).call(get("/exact"))).body).toHaveLength(1_000);
  });

  it("reports the caller's abort as cancelled", async () => {
    api.route("GET", "/hang", { delayMs: 1_500, body: {} });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await failure(loopbackTools().call(get("/hang"), controller.signal));
    expect([error.code, error.retryable]).toEqual(["cancelled", false]);

    const already = new AbortController();
    already.abort();
    const before = api.requests.length;
    expect((await failure(loopbackTools().call(get("/hang"), already.signal))).code).toBe("cancelled");
    expect(api.requests.length).toBe(before);
  });
});

describe("createHttpTools: refused input", () => {
  it.each([
    ["CR LF in a value", { "X-Note": "a\r\nX-Injected: 1" }],
    ["LF in a value", { "X-Note": "a\nb" }],
    ["NUL in a value", { "X-Note": "a\0b" }],
    ["CR LF in a name", { "X-A\r\nX-B": "1" }],
    ["a space in a name", { "X A": "1" }],
    ["a framing header", { "Content-Length": "0" }],
    ["a Host header", { Host: "169.254.169.254" }],
  ])("refuses %s with invalid_header, sending nothing", async (_label, headers) => {
    api.route("GET", "/h", { body: {} });
    const error = await failure(loopbackTools().call(get("/h", { headers })));
    expect([error.code, error.retryable]).toEqual(["invalid_header", false]);
    expect(api.requests).toHaveLength(0);
  });

  it("does not echo a refused header value (it may be a secret)", async () => {
    const error = await failure(
      loopbackTools().call(get("/h", { headers: { Authorization: "Bearer s3cr3t\r\n" } })),
    );
    expect(error.message).not.toContain("s3cr3t");
  });

  it.each(["ftp://example.com/file", "file:///etc/passwd", "not a url", "gopher://127.0.0.1:6379/_INFO"])(
    "refuses the endpoint %s with invalid_endpoint",
    async (url) => {
      const error = await failure(createHttpTools().call({ toolId: "t", method: "GET", url, headers: {} }));
      expect([error.code, error.retryable]).toEqual(["invalid_endpoint", false]);
    },
  );
});

describe("createHttpTools: address guard", () => {
  it("refuses loopback without an allow-list, before connecting", async () => {
    api.route("GET", "/ok", { body: {} });
    const connectionsBefore = api.connections;
    const error = await failure(createHttpTools().call(get("/ok")));
    expect([error.code, error.retryable]).toEqual(["endpoint_refused", false]);
    expect(api.connections).toBe(connectionsBefore);
    expect(api.requests).toHaveLength(0);
  });

  it("checks names by the address they resolve to", async () => {
    const connectionsBefore = api.connections;
    const error = await failure(createHttpTools().call(get("", { url: `http://localhost:${api.port}/ok` })));
    expect(error.code).toBe("endpoint_refused");
    expect(error.message).toContain("the endpoint host localhost is not allowed");
    expect(api.connections).toBe(connectionsBefore);
  });

  it("does not say what a refused name resolves to", async () => {
    const error = await failure(createHttpTools().call(get("", { url: `http://localhost:${api.port}/ok` })));
    expect(error.code).toBe("endpoint_refused");
    expect(error.message).toContain("TOOL_ALLOW_HOSTS");
    for (const leak of ["127.0.0.1", "::1", "loopback", "resolves"])
      expect(error.message).not.toContain(leak);
  });

  it("allows a host on the allow-list, by name or with its port, case-insensitively", async () => {
    api.route("GET", "/ok", { body: { fine: true } });
    expect((await createHttpTools({ allowHosts: ["127.0.0.1"] }).call(get("/ok"))).body).toEqual({
      fine: true,
    });
    expect((await createHttpTools({ allowHosts: [`127.0.0.1:${api.port}`] }).call(get("/ok"))).status).toBe(
      200,
    );
    const byName = createHttpTools({ allowHosts: [`LOCALHOST:${api.port}`] });
    expect((await byName.call(get("", { url: `http://localhost:${api.port}/ok` }))).status).toBe(200);
  });

  it("refuses the allowed host on another port", async () => {
    const error = await failure(
      createHttpTools({ allowHosts: [`127.0.0.1:${api.port + 1}`] }).call(get("/ok")),
    );
    expect(error.code).toBe("endpoint_refused");
  });

  it("reads TOOL_ALLOW_HOSTS, TOOL_TIMEOUT_MS and TOOL_MAX_RESPONSE_BYTES through createToolsFromConfig", async () => {
    api.route("GET", "/ok", { body: { fine: true } });
    api.route("GET", "/slow-config", { delayMs: 1_500, body: {} });
    api.route("GET", "/big-config", { body: "b".repeat(2_000) });
    const refused = createToolsFromConfig(loadConfig({}));
    expect((await failure(refused.call(get("/ok")))).code).toBe("endpoint_refused");
    const tools = createToolsFromConfig(
      loadConfig({
        TOOL_ALLOW_HOSTS: ` example.com , 127.0.0.1:${api.port}`,
        TOOL_TIMEOUT_MS: "100",
        TOOL_MAX_RESPONSE_BYTES: "1024",
      }),
    );
    expect((await tools.call(get("/ok"))).body).toEqual({ fine: true });
    expect((await failure(tools.call(get("/slow-config")))).code).toBe("tool_timeout");
    expect((await failure(tools.call(get("/big-config")))).code).toBe("tool_response_too_large");
  });

  it.each([
    "http://10.0.0.1/x",
    "http://172.16.5.4/x",
    "http://192.168.1.1/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/x",
    "http://0.0.0.0/x",
    "http://[::1]/x",
    "http://[::]/x",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/x",
    "http://[::ffff:169.254.169.254]/x",
    "http://[::ffff:10.0.0.1]/x",
    "http://[::a00:1]/x",
    "http://[64:ff9b::7f00:1]/x",
    "http://[2002:7f00:1::]/x",
    "http://[2001:db8::1]/x",
    "http://198.18.0.1/x",
    "http://203.0.113.5/x",
    "http://2130706433/x",
    "http://0x7f.0.0.1/x",
    "https://10.0.0.1/x",
  ])("refuses %s without opening a socket", async (url) => {
    let error: MovaError | undefined;
    const opened = await socketsOpenedDuring(async () => {
      error = await failure(
        createHttpTools({ allowHosts: ["example.com"] }).call({
          toolId: "t",
          method: "GET",
          url,
          headers: {},
        }),
      );
    });
    expect(error?.code).toBe("endpoint_refused");
    expect(error?.message).toMatch(/is not allowed \(.+ address\); list it in TOOL_ALLOW_HOSTS/);
    expect(opened).toBe(0);
  });
});

describe("createHttpTools: connection reuse", () => {
  it("sends sequential calls over one kept-alive connection", async () => {
    const double = await startHttpDouble();
    try {
      double.route("GET", "/a", { body: { n: 1 } });
      double.route("POST", "/b", { body: { n: 2 } });
      const tools = createHttpTools({ allowHosts: ["127.0.0.1"] });
      for (let i = 0; i < 5; i++) {
        await tools.call({ toolId: "a", method: "GET", url: `${double.url}/a`, headers: {} });
        await tools.call({ toolId: "b", method: "POST", url: `${double.url}/b`, headers: {}, body: { i } });
      }
      expect(double.requests).toHaveLength(10);
      expect(double.connections).toBe(1);
      expect(double.requests.every((r) => r.headers.connection === "keep-alive")).toBe(true);
    } finally {
      await double.close();
    }
  });

  it("keeps the connection usable after an error status or a body that does not parse", async () => {
    const double = await startHttpDouble();
    try {
      double.route("GET", "/err", { status: 500, body: { e: 1 } });
      double.route("GET", "/bad", { body: "{", headers: { "content-type": "application/json" } });
      double.route("GET", "/ok", { body: {} });
      const tools = createHttpTools({ allowHosts: ["127.0.0.1"] });
      await failure(tools.call({ toolId: "t", method: "GET", url: `${double.url}/err`, headers: {} }));
      await failure(tools.call({ toolId: "t", method: "GET", url: `${double.url}/bad`, headers: {} }));
      await tools.call({ toolId: "t", method: "GET", url: `${double.url}/ok`, headers: {} });
      expect(double.connections).toBe(1);
    } finally {
      await double.close();
    }
  });

  it("resends an idempotent call once when the pooled connection was closed by the server", async () => {
    const double = await startHttpDouble();
    try {
      double.route("GET", "/ok", { body: { fine: true } });
      const tools = createHttpTools({ allowHosts: ["127.0.0.1"] });
      await tools.call({ toolId: "t", method: "GET", url: `${double.url}/ok`, headers: {} });
      // The server drops the idle socket on the next request, as a server whose keep-alive ran out does.
      double.queue("GET", "/ok", { destroy: true });
      const response = await tools.call({ toolId: "t", method: "GET", url: `${double.url}/ok`, headers: {} });
      expect(response.body).toEqual({ fine: true });
      expect(double.connections).toBe(2);
    } finally {
      await double.close();
    }
  });
});

describe("createHttpTools: idle connections", () => {
  it("drops an idle socket before the server's announced keep-alive timeout ends", async () => {
    const { createServer } = await import("node:http");
    let connections = 0;
    const server = createServer((_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end('{"ok":true}');
    });
    // Announced as `Keep-Alive: timeout=2`: the port must stop reusing the socket after 1 s,
    // or a call after a pause could be written into a socket the server is closing.
    server.keepAliveTimeout = 2_000;
    server.on("connection", () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as import("node:net").AddressInfo;
    try {
      const tools = loopbackTools();
      const call = () => tools.call(get("", { url: `http://127.0.0.1:${port}/ok` }));
      expect((await call()).body).toEqual({ ok: true });
      expect((await call()).body).toEqual({ ok: true });
      expect(connections).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect((await call()).body).toEqual({ ok: true });
      expect(connections).toBe(2);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("withoutAddresses", () => {
  it("removes IPv4 and IPv6 addresses and their ports from a network error's message", () => {
    expect(withoutAddresses("connect ECONNREFUSED 10.0.3.7:443")).toBe("connect ECONNREFUSED [address]");
    expect(withoutAddresses("connect ETIMEDOUT [fd00::1]:8080")).toBe("connect ETIMEDOUT [address]");
    expect(withoutAddresses("socket hang up")).toBe("socket hang up");
  });
});
