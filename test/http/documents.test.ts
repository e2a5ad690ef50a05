/** Documents, auth, body limits and the OpenAPI document, against the real local stack. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, invoke, shopDocument, startApiFixture, v2Event } from "../support/api-fixture.ts";

let api: ApiFixture;

beforeAll(async () => {
  api = await startApiFixture({ MAX_BODY_BYTES: "4096" });
});
afterAll(async () => {
  await api?.close();
});

describe("documents", () => {
  it("stores a document (201), keeps an identical one's version (200), bumps a changed one", async () => {
    const document = shopDocument(api.tools.url);
    const created = await api.call("PUT", "/documents/shop", { body: document });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "shop", version: 1 });
    expect(created.body.hash).toMatch(/^[0-9a-f]{64}$/);

    const same = await api.call("PUT", "/documents/shop", { body: document });
    expect(same.status).toBe(200);
    expect(same.body.version).toBe(1);

    const changed = await api.call("PUT", "/documents/shop", {
      body: { ...document, profiles: [{ user_id: "u2", name: "Taras" }] },
    });
    expect(changed.status).toBe(200);
    expect(changed.body.version).toBe(2);
    expect(changed.body.hash).not.toBe(created.body.hash);

    const got = await api.call("GET", "/documents/shop");
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ name: "shop", version: 2, hash: changed.body.hash });
    expect(got.body.document.profiles).toEqual([{ user_id: "u2", name: "Taras" }]);

    const list = await api.call("GET", "/documents");
    expect(list.status).toBe(200);
    expect(list.body.items.map((item: { name: string }) => item.name)).toContain("shop");
  });

  it("rejects an invalid document with 422 and the validator's errors, storing nothing", async () => {
    const bad = {
      version: "2.2",
      protocols: [{ name: "p", steps: [{ id: "a", action: "prompt", prompt: "x", next_step: "nowhere" }] }],
    };
    const response = await api.call("PUT", "/documents/broken-doc", { body: bad });
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe("invalid_document");
    expect(response.body.error.details.errors.map((issue: { code: string }) => issue.code)).toContain(
      "unknown_reference",
    );
    expect((await api.call("GET", "/documents/broken-doc")).status).toBe(404);
  });

  it("accepts a body the gateway passed base64-encoded (a non-text content type)", async () => {
    const response = await api.call("PUT", "/documents/binary-upload", {
      rawBody: JSON.stringify(shopDocument(api.tools.url)),
      headers: { "content-type": "application/octet-stream" },
    });
    expect(response.status).toBe(201);
    const got = await api.call("GET", "/documents/binary-upload");
    expect(got.body.document.protocols[0].name).toBe("order_flow");
  });

  it("answers 400 invalid_json for a body that is not JSON and 400 for a bad name", async () => {
    const response = await api.call("PUT", "/documents/x", {
      rawBody: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("invalid_json");
    const badName = await api.call("GET", `/documents/${encodeURIComponent("a b")}`);
    expect(badName.status).toBe(400);
    expect(badName.body.error.code).toBe("invalid_request");
  });

  it("answers 413 for a body over MAX_BODY_BYTES before parsing it", async () => {
    const response = await api.call("PUT", "/documents/huge", {
      rawBody: `{"version":"2.2","pad":"${"x".repeat(5000)}"`,
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe("payload_too_large");
    expect((await api.call("GET", "/documents/huge")).status).toBe(404);
  });
});

describe("auth and tenants", () => {
  it("needs a key on every route but /health, /openapi.json and the dashboard's page", async () => {
    expect((await api.call("GET", "/health", { key: null })).status).toBe(200);
    expect((await api.call("GET", "/openapi.json", { key: null })).status).toBe(200);
    expect((await fetch(`${api.gateway.url}/dashboard`)).status).toBe(200);
    const missing = await api.call("GET", "/documents", { key: null });
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe("unauthorized");
    expect((await api.call("GET", "/documents", { key: "wrong" })).status).toBe(401);
    const viaHeader = await api.call("GET", "/documents", {
      key: null,
      headers: { "x-api-key": api.devKey },
    });
    expect(viaHeader.status).toBe(200);
  });

  it("keeps tenants apart: another tenant's document is 404, and lists differ", async () => {
    await api.call("PUT", "/documents/private-doc", { body: shopDocument(api.tools.url) });
    const other = await api.call("GET", "/documents/private-doc", { key: api.acmeKey });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe("not_found");
    const otherList = await api.call("GET", "/documents", { key: api.acmeKey });
    expect(otherList.body.items.map((item: { name: string }) => item.name)).not.toContain("private-doc");
    const session = await api.call("POST", "/sessions", {
      key: api.acmeKey,
      body: { document: "private-doc", userId: "u1" },
    });
    expect(session.status).toBe(404);
  });
});

describe("the handler with API Gateway v2 events", () => {
  it("routes a real v2 event, with mixed-case headers, and answers unknown routes with 404", async () => {
    const ok = await invoke(
      api.handler,
      v2Event("GET", "/documents", { headers: { Authorization: `Bearer ${api.devKey}` } }),
    );
    expect(ok.statusCode).toBe(200);
    expect(ok.headers?.["x-request-id"]).toMatch(/^req-/);
    const unknown = await invoke(api.handler, v2Event("GET", "/nothing-here"));
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json.error.code).toBe("not_found");
  });

  it("serves an OpenAPI 3.1 document listing every route with its schemas and the error shape", async () => {
    const { body } = await api.call("GET", "/openapi.json", { key: null });
    expect(body.openapi).toBe("3.1.0");
    const operations = Object.entries(body.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        "GET /health",
        "GET /ready",
        "GET /openapi.json",
        "GET /dashboard",
        "GET /dashboard/app.js",
        "PUT /documents/{name}",
        "GET /documents/{name}",
        "GET /documents",
        "POST /sessions",
        "GET /sessions/{id}",
        "DELETE /sessions/{id}",
        "POST /sessions/{id}/messages",
        "POST /executions",
        "GET /executions/{id}",
        "GET /executions/{id}/steps",
        "GET /executions/{id}/events",
        "GET /executions/{id}/children",
        "POST /executions/{id}/events/{name}",
        "POST /executions/{id}/cancel",
        "POST /executions/{id}/redrive",
        "POST /callbacks/{token}",
        "GET /documents/{name}/protocols/{protocol}/executions",
        "GET /documents/{name}/protocols/{protocol}/patterns",
        "GET /documents/{name}/protocols/{protocol}/recommendations",
        "GET /patterns",
        "POST /analysis/runs",
        "GET /analysis/runs/{id}",
        "POST /executions/{id}/feedback",
        "GET /executions/{id}/feedback",
        "GET /documents/{name}/versions",
        "GET /documents/{name}/versions/{version}",
        "GET /documents/{name}/protocols/{protocol}/compare",
        "GET /usage",
        "POST /documents/{name}/protocols/{protocol}/recommendations/{id}/apply",
        "PUT /documents/{name}/routing",
        "GET /documents/{name}/routing",
      ].sort(),
    );
    const createSession = body.components.schemas.CreateSessionRequest;
    expect(createSession.required).toEqual(expect.arrayContaining(["document", "userId"]));
    expect(body.components.schemas.Error.properties.error.required).toEqual(
      expect.arrayContaining(["code", "message"]),
    );
    const listExecutions = body.paths["/documents/{name}/protocols/{protocol}/executions"].get;
    expect(listExecutions.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["from", "to", "status", "limit", "cursor"]),
    );
    const steps = body.paths["/executions/{id}/steps"].get;
    expect(steps.parameters.map((p: { name: string }) => p.name)).toEqual(["id", "cursor", "limit"]);
    expect(body.components.schemas.ExecutionRecord.properties.stepsCursor.type).toBe("string");
    // The signed callback URL is its own credential: no API key.
    expect(body.paths["/callbacks/{token}"].post.security).toEqual([]);
    expect(Object.keys(body.paths["/executions/{id}/events/{name}"].post.responses)).toEqual(
      expect.arrayContaining(["200", "202", "404", "409"]),
    );
    // The streamed events route is served beside the route table, and described all the same.
    const follow = body.paths["/executions/{id}/events"].get;
    expect(Object.keys(follow.responses["200"].content)).toEqual(["text/event-stream"]);
    expect(follow.parameters.map((p: { name: string }) => p.name)).toEqual(["id", "Last-Event-ID"]);
  });
});
