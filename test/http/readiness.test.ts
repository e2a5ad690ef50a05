/**
 * /health answers without any backing service; /ready names what is missing; with no Upstash
 * settings the API starts, answers what needs no Redis, and refuses the rest with 503 before
 * writing anything.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config.ts";
import { createApiHandler } from "../../lib/http/handler.ts";
import { buildApiDeps } from "../../lib/wiring/api.ts";
import { type ApiFixture, invoke, quietLogger, startApiFixture, v2Event } from "../support/api-fixture.ts";

let api: ApiFixture;

beforeAll(async () => {
  api = await startApiFixture();
});
afterAll(async () => {
  await api?.close();
});

describe("/ready", () => {
  it("is ready on the local stack, every dependency by name", async () => {
    const response = await api.call("GET", "/ready", { key: null });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      status: "ready",
      dependencies: { dynamodb: "ok", redis: "ok", analysisQueue: "ok", runsQueue: "ok", llm: "ok" },
    });
  });

  it("says which dependency is unavailable: DynamoDB unreachable", async () => {
    const handler = api.handlerWith({ AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9" });
    const response = await invoke(handler, v2Event("GET", "/ready"));
    expect(response.statusCode).toBe(503);
    expect(response.json.dependencies).toMatchObject({ dynamodb: "unavailable", redis: "ok" });
    expect(response.body).not.toContain("127.0.0.1");
  });
});

describe("with no Upstash settings", () => {
  const noRedis = { UPSTASH_REDIS_REST_URL: "", UPSTASH_REDIS_REST_TOKEN: "", LLM_API_KEY: "" };

  it("builds the API, answers /health, and /ready names redis (and the LLM) as missing", async () => {
    const handler = api.handlerWith(noRedis);
    const health = await invoke(handler, v2Event("GET", "/health"));
    expect(health.statusCode).toBe(200);
    expect(health.json.status).toBe("ok");
    const ready = await invoke(handler, v2Event("GET", "/ready"));
    expect(ready.statusCode).toBe(503);
    expect(ready.json).toEqual({
      status: "not_ready",
      dependencies: {
        dynamodb: "ok",
        redis: "missing",
        analysisQueue: "ok",
        runsQueue: "ok",
        llm: "missing",
      },
    });
  });

  // biome-ignore lint/suspicious/noExplicitAny: the listing's JSON
  const listedId = (listed: { body: any }): string => {
    expect(listed.body.items).toHaveLength(1);
    return listed.body.items[0].executionId;
  };

  it("serves documents, refuses sessions (nothing written) and runs (recorded as failed) with 503", async () => {
    const handler = api.handlerWith(noRedis);
    const auth = { authorization: `Bearer ${api.devKey}` };
    const document = {
      version: "2.2",
      protocols: [{ name: "p", steps: [{ id: "end", action: "end", response_template: "done" }] }],
    };
    const put = await invoke(
      handler,
      v2Event("PUT", "/documents/no-redis", { body: document, headers: auth }),
    );
    expect([200, 201]).toContain(put.statusCode);
    const session = await invoke(
      handler,
      v2Event("POST", "/sessions", { body: { document: "no-redis", userId: "u" }, headers: auth }),
    );
    expect(session.statusCode).toBe(503);
    expect(session.json.error.code).toBe("session_store_unavailable");
    const run = await invoke(
      handler,
      v2Event("POST", "/executions", { body: { document: "no-redis", protocol: "p" }, headers: auth }),
    );
    expect(run.statusCode).toBe(503);
    expect(run.json.error.code).toBe("run_store_unavailable");
    // Nothing is lost or left running: the run that could not start is on record as failed, with why.
    const record = await api.call(
      "GET",
      `/executions/${listedId(await api.call("GET", "/documents/no-redis/protocols/p/executions"))}`,
    );
    expect(record.body).toMatchObject({ status: "failed", error: { code: "run_store_unavailable" } });
  });
});

describe("CORS", () => {
  const handlerFor = (origins: string) => api.handlerWith({ CORS_ALLOWED_ORIGINS: origins });

  it("answers a preflight OPTIONS for an allowed origin (204 with its headers)", async () => {
    const handler = handlerFor("https://app.example.com");
    const preflight = await invoke(
      handler,
      v2Event("OPTIONS", "/executions", {
        headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
      }),
    );
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers).toMatchObject({
      "access-control-allow-origin": "https://app.example.com",
      "access-control-allow-methods": expect.stringContaining("POST"),
      "access-control-allow-headers": expect.stringContaining("idempotency-key"),
    });
    const health = await invoke(
      handler,
      v2Event("GET", "/health", { headers: { origin: "https://app.example.com" } }),
    );
    expect(health.headers?.["access-control-allow-origin"]).toBe("https://app.example.com");
  });

  it("gives another origin no CORS headers", async () => {
    const handler = handlerFor("https://app.example.com");
    const other = await invoke(
      handler,
      v2Event("OPTIONS", "/executions", { headers: { origin: "https://evil.example" } }),
    );
    expect(other.statusCode).toBe(204);
    expect(other.headers?.["access-control-allow-origin"]).toBeUndefined();
    const none = await invoke(
      api.handler,
      v2Event("GET", "/health", { headers: { origin: "https://app.example.com" } }),
    );
    expect(none.headers?.["access-control-allow-origin"]).toBeUndefined();
  });
});

describe("handled server errors", () => {
  it("are reported to onServerError with their code (the EMF metric the alarm watches)", async () => {
    const env = { ...api.env, AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9" };
    const deps = buildApiDeps(loadConfig(env), {
      env,
      sessionBackend: api.stack.sessionBackend,
      logger: quietLogger(),
    });
    const codes: string[] = [];
    const handler = createApiHandler({ ...deps, onServerError: (code) => codes.push(code) });
    const response = await invoke(
      handler,
      v2Event("GET", "/documents/x", { headers: { authorization: `Bearer ${api.devKey}` } }),
    );
    expect(response.statusCode).toBe(503);
    expect(codes).toEqual([response.json.error.code]);
    const refused = await invoke(handler, v2Event("GET", "/documents/x"));
    expect(refused.statusCode).toBe(401);
    expect(codes).toHaveLength(1);
  });
});
