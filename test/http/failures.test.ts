/**
 * Backing services down: Redis unreachable → 503 session_store_unavailable and nothing written;
 * DynamoDB unreachable → 503 history_unavailable.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, invoke, shopDocument, startApiFixture, v2Event } from "../support/api-fixture.ts";

let api: ApiFixture;
let deadUrl: string;

beforeAll(async () => {
  api = await startApiFixture();
  await api.call("PUT", "/documents/shop", { body: shopDocument(api.tools.url) });
  // A port that was free a moment ago: nothing answers there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  deadUrl = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await api?.close();
});

describe("Redis unreachable", () => {
  it("answers 503 session_store_unavailable and writes nothing to history or the queue", async () => {
    expect(api.stack.sessionBackend).toBe("redis");
    const created = await api.call("POST", "/sessions", { body: { document: "shop", userId: "u1" } });
    const { sessionId } = created.body;
    const before = (await api.call("GET", `/sessions/${sessionId}`)).body;
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);

    const down = api.handlerWith({ UPSTASH_REDIS_REST_URL: deadUrl });
    const headers = { authorization: `Bearer ${api.devKey}` };
    const message = await invoke(
      down,
      v2Event("POST", `/sessions/${sessionId}/messages`, { headers, body: { text: "order" } }),
    );
    expect(message.statusCode).toBe(503);
    expect(message.json.error.code).toBe("session_store_unavailable");
    const create = await invoke(
      down,
      v2Event("POST", "/sessions", { headers, body: { document: "shop", userId: "u1" } }),
    );
    expect(create.statusCode).toBe(503);
    expect(create.json.error.code).toBe("session_store_unavailable");

    const history = await api.call("GET", "/documents/shop/protocols/order_flow/executions");
    expect(history.body.items).toEqual([]);
    expect(await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!)).toEqual([]);
    const session = await api.call("GET", `/sessions/${sessionId}`);
    expect(session.body).toEqual(before);
  });
});

describe("history unavailable", () => {
  it("answers 503 history_unavailable instead of a silent success", async () => {
    const broken = api.handlerWith({ EXECUTIONS_TABLE: "no-such-table" });
    const response = await invoke(
      broken,
      v2Event("POST", "/executions", {
        headers: { authorization: `Bearer ${api.devKey}` },
        body: { document: "shop", protocol: "echo", variables: { word: "x" } },
      }),
    );
    expect(response.statusCode).toBe(503);
    expect(response.json.error.code).toBe("history_unavailable");
  });

  it("answers 503 history_unavailable when an Idempotency-Key cannot be claimed, without running", async () => {
    const llmCalls = api.llm.completions().length;
    const unreachable: Array<Record<string, string>> = [
      { EXECUTIONS_TABLE: "no-such-table" },
      { AWS_ENDPOINT_URL_DYNAMODB: deadUrl },
    ];
    for (const overrides of unreachable) {
      const response = await invoke(
        api.handlerWith(overrides),
        v2Event("POST", "/executions", {
          headers: { authorization: `Bearer ${api.devKey}`, "idempotency-key": "claim-fails" },
          body: { document: "shop", protocol: "echo", variables: { word: "x" } },
        }),
      );
      expect(response.statusCode, JSON.stringify(overrides)).toBe(503);
      expect(response.json.error.code).toBe("history_unavailable");
    }
    expect(api.llm.completions().length).toBe(llmCalls);
  });
});
