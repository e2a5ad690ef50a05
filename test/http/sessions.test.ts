/**
 * Sessions and conversations through the gateway: intents, a multi-turn run suspended and
 * resumed across requests, its history record and its event on the queue, concurrent
 * messages on one session, and tenant isolation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecutionEventSchema } from "../../lib/core/execution-event.ts";
import { type ApiFixture, shopDocument, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;

beforeAll(async () => {
  api = await startApiFixture();
  const stored = await api.call("PUT", "/documents/shop", { body: shopDocument(api.tools.url) });
  expect(stored.status).toBe(201);
  api.tools.route("GET", "/stock/apple", { body: { available: 7 } });
  api.tools.route("GET", "/stock/pear", { body: { available: 2 } });
});
afterAll(async () => {
  await api?.close();
});

async function newSession(userId = "u1", data?: Record<string, unknown>) {
  const created = await api.call("POST", "/sessions", {
    body: { document: "shop", userId, ...(data ? { data } : {}) },
  });
  expect(created.status).toBe(201);
  return created.body.sessionId as string;
}

const say = (sessionId: string, text: string, key?: string) =>
  api.call("POST", `/sessions/${sessionId}/messages`, { body: { text }, ...(key ? { key } : {}) });

describe("sessions", () => {
  it("creates, reads and deletes a session; an unknown document is 404", async () => {
    const created = await api.call("POST", "/sessions", {
      body: { document: "shop", userId: "u1", data: { plan: "pro" } },
    });
    expect(created.status).toBe(201);
    expect(Date.parse(created.body.expiresAt)).toBeGreaterThan(Date.now() + 3000 * 1000);
    const { sessionId } = created.body;

    const read = await api.call("GET", `/sessions/${sessionId}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      sessionId,
      document: "shop",
      userId: "u1",
      data: { plan: "pro" },
      waiting: null,
    });

    expect((await api.call("DELETE", `/sessions/${sessionId}`)).status).toBe(204);
    expect((await api.call("GET", `/sessions/${sessionId}`)).status).toBe(404);
    expect((await say(sessionId, "hello")).status).toBe(404);

    const unknown = await api.call("POST", "/sessions", { body: { document: "nope", userId: "u1" } });
    expect(unknown.status).toBe(404);
    const invalid = await api.call("POST", "/sessions", { body: { document: "shop" } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe("invalid_request");
  });

  it("answers an intent without protocol with its response template, and an unknown message helpfully", async () => {
    const sessionId = await newSession();
    const hello = await say(sessionId, "Hello there");
    expect(hello.status).toBe(200);
    expect(hello.body).toEqual({
      status: "responded",
      replies: ["Hello Olena!"],
      intent: "greeting",
      executionId: null,
    });

    const unknown = await say(sessionId, "qwerty zxcv");
    expect(unknown.status).toBe(200);
    expect(unknown.body.status).toBe("not_understood");
    expect(unknown.body.intent).toBeNull();
    expect(unknown.body.replies[0]).toContain("ordering an item");
  });
});

describe("a multi-turn conversation", () => {
  it("starts the intent's protocol, waits for input twice, resumes and completes; history and queue follow", async () => {
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    const sessionId = await newSession();

    const first = await say(sessionId, "I want to order something");
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: "waiting_input", intent: "order" });
    expect(first.body.replies).toContain("Which item would you like?");
    const executionId = first.body.executionId as string;
    expect(executionId).toBeTruthy();

    const waiting = await api.call("GET", `/executions/${executionId}`);
    expect(waiting.status).toBe(200);
    expect(waiting.body).toMatchObject({
      status: "waiting_input",
      sessionId,
      trigger: "session",
      intent: "order",
      analysis: "waiting",
    });

    const session = await api.call("GET", `/sessions/${sessionId}`);
    expect(session.body.waiting).toEqual({ protocol: "order_flow", stepId: "ask_item", executionId });

    const second = await say(sessionId, "apple");
    expect(second.body).toMatchObject({ status: "waiting_input", executionId });
    expect(second.body.replies).toContain("How many apple?");

    const third = await say(sessionId, "3");
    expect(third.status).toBe(200);
    expect(third.body).toMatchObject({
      status: "completed",
      executionId,
      intent: "order",
      output: "Ordered 3 apple",
    });
    expect(third.body.replies.at(-1)).toBe("Ordered 3 apple");
    const prompt = api.llm.completions().at(-1)?.messages.at(-1)?.content;
    expect(prompt).toBe("Confirm 3 x apple (7 in stock) for Olena");

    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body).toMatchObject({
      status: "completed",
      protocol: "order_flow",
      document: "shop",
      documentVersion: 1,
      analysis: "published",
    });
    expect(record.body.path).toEqual(["ask_item", "ask_quantity", "check_stock", "confirm", "end"]);
    expect(record.body.steps.find((s: { id: string }) => s.id === "check_stock")).toMatchObject({
      status: "succeeded",
      httpStatus: 200,
    });

    const after = await api.call("GET", `/sessions/${sessionId}`);
    expect(after.body.waiting).toBeNull();
    expect(after.body.intent).toBe("order");

    const messages = await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!);
    const ours = messages.filter((m) => JSON.parse(m.Body ?? "{}").execution?.executionId === executionId);
    expect(ours).toHaveLength(1);
    const event = ExecutionEventSchema.parse(JSON.parse(ours[0]!.Body!));
    expect(event.execution.status).toBe("completed");
    expect(ours[0]!.MessageAttributes?.tenant?.StringValue).toBe("dev");
    expect(ours[0]!.MessageAttributes?.protocol?.StringValue).toBe("order_flow");
    expect(ours[0]!.MessageAttributes?.status?.StringValue).toBe("completed");
  });

  it("200 messages at the same moment: the tool is called once per applied message, every loser is 409 having called nothing", async () => {
    const sessionId = await newSession();
    await say(sessionId, "order please");
    await say(sessionId, "pear");
    const before = (await api.call("GET", `/sessions/${sessionId}`)).body;
    expect(before.waiting.stepId).toBe("ask_quantity");
    const executionId = before.waiting.executionId as string;
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    const stockCalls = () => api.tools.requests.filter((r) => r.path === "/stock/pear").length;
    const confirmCalls = () =>
      api.llm.completions().filter((c) => c.messages.at(-1)?.content.startsWith("Confirm ")).length;
    const toolBefore = stockCalls();
    const confirmBefore = confirmCalls();

    // The winner's run is in flight (a slow prompt step) while the others arrive.
    api.llm.setDelay(300);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, n) => say(sessionId, String(n + 1))));
    api.llm.setDelay(0);

    const applied = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status === 409);
    expect(applied.length + refused.length).toBe(200);
    for (const loser of refused)
      expect(["session_busy", "session_conflict"]).toContain(loser.body.error.code);
    // Exactly one message resumed the waiting run; later applied ones found it finished.
    const resumed = applied.filter((r) => r.body.executionId === executionId);
    expect(resumed).toHaveLength(1);
    expect(resumed[0]!.body.status).toBe("completed");
    for (const other of applied) {
      if (other !== resumed[0]) expect(["not_understood", "responded"]).toContain(other.body.status);
    }
    // The tool and the run's prompt were called once per applied message that ran the steps:
    // no refused message reached them.
    expect(stockCalls() - toolBefore).toBe(resumed.length);
    expect(confirmCalls() - confirmBefore).toBe(resumed.length);

    const after = (await api.call("GET", `/sessions/${sessionId}`)).body;
    // Never a lost write: each applied message wrote the session twice (its lease, its turn).
    expect(after.version).toBe(before.version + 2 * applied.length);
    expect(after.waiting).toBeNull();
    const record = await api.call("GET", `/executions/${executionId}`);
    expect(record.body.status).toBe("completed");
    const quantity = record.body.steps.find((s: { id: string }) => s.id === "ask_quantity").output;
    expect(resumed[0]!.body.output).toBe(`Ordered ${quantity} pear`);
    const events = (await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!)).filter(
      (m) => JSON.parse(m.Body ?? "{}").execution?.executionId === executionId,
    );
    expect(events).toHaveLength(1);
  });
});

describe("tenant isolation of sessions and executions", () => {
  it("answers 404 to another tenant for a session, its messages, its deletion and its executions", async () => {
    const sessionId = await newSession();
    const started = await say(sessionId, "order");
    const executionId = started.body.executionId as string;

    expect((await api.call("GET", `/sessions/${sessionId}`, { key: api.acmeKey })).status).toBe(404);
    expect((await say(sessionId, "apple", api.acmeKey)).status).toBe(404);
    expect((await api.call("DELETE", `/sessions/${sessionId}`, { key: api.acmeKey })).status).toBe(404);
    expect((await api.call("GET", `/executions/${executionId}`, { key: api.acmeKey })).status).toBe(404);
    const page = await api.call("GET", "/documents/shop/protocols/order_flow/executions", {
      key: api.acmeKey,
    });
    expect(page.status).toBe(200);
    expect(page.body.items).toEqual([]);

    const mine = await api.call("GET", `/sessions/${sessionId}`);
    expect(mine.status).toBe(200);
    expect(mine.body.waiting.stepId).toBe("ask_item");
  });
});
