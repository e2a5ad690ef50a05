/**
 * Intents with `interrupts` on the local stack: while a session's run waits for input, a
 * message matching such an intent cancels that run (checkpoint and history `cancelled`, error
 * `interrupted`) and starts the intent's protocol as the session's new run; any other message
 * is the waiting run's answer, as before; two messages at once still get one 409.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;

const shopDocument = {
  version: "2.2",
  intents: [
    { name: "order", patterns: ["order"], intent_type: "command", protocol: "order_flow" },
    {
      name: "stop",
      patterns: ["stop", "cancel"],
      intent_type: "command",
      protocol: "stop_flow",
      interrupts: true,
    },
    { name: "help", patterns: ["help"], intent_type: "question", protocol: "help_flow" },
  ],
  protocols: [
    {
      name: "order_flow",
      steps: [
        { id: "size", action: "input", prompt: "Which size?", variable: "size" },
        { id: "end", action: "end", response_template: "ordered {size}" },
      ],
    },
    {
      name: "stop_flow",
      steps: [{ id: "bye", action: "end", response_template: "stopped: {user_input}" }],
    },
    { name: "help_flow", steps: [{ id: "help", action: "end", response_template: "help" }] },
  ],
};

beforeAll(async () => {
  api = await startApiFixture();
  expect((await api.call("PUT", "/documents/shop", { body: shopDocument })).status).toBe(201);
});
afterAll(async () => {
  await api?.close();
});

async function waitingSession(): Promise<{ sessionId: string; executionId: string }> {
  const created = await api.call("POST", "/sessions", { body: { document: "shop", userId: "u1" } });
  expect(created.status).toBe(201);
  const sessionId = created.body.sessionId as string;
  const first = await say(sessionId, "I want to order");
  expect(first.body).toMatchObject({ status: "waiting_input", intent: "order" });
  return { sessionId, executionId: first.body.executionId as string };
}

/** The executions published to the analysis (both queues) since the last call. */
async function published(): Promise<Array<Record<string, unknown>>> {
  const queues = [api.env.ANALYSIS_QUEUE_URL!, api.env.ANALYSIS_PRIORITY_QUEUE_URL!];
  const drained = await Promise.all(queues.map((url) => api.drainQueue(url, 0)));
  return drained.flat().map((m) => JSON.parse(m.Body!).execution);
}

const say = (sessionId: string, text: string) =>
  api.call("POST", `/sessions/${sessionId}/messages`, { body: { text } });

describe("an intent with interrupts", () => {
  it("cancels the waiting run with the reason interrupted and starts its own protocol", async () => {
    const { sessionId, executionId } = await waitingSession();
    await published();
    const stop = await say(sessionId, "please stop");
    expect(stop.status).toBe(200);
    expect(stop.body).toMatchObject({
      status: "completed",
      intent: "stop",
      interrupted: executionId,
      output: "stopped: please stop",
    });
    expect(stop.body.executionId).not.toBe(executionId);

    const old = await api.call("GET", `/executions/${executionId}`);
    expect(old.body).toMatchObject({ status: "cancelled", error: { code: "interrupted" } });
    expect(old.body.path).toEqual(["size"]);
    // The cancelled run reaches the analysis once, as cancelled with its reason.
    const events = (await published()).filter((e) => e.executionId === executionId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: "cancelled", error: { code: "interrupted" } });
    const started = await api.call("GET", `/executions/${stop.body.executionId}`);
    expect(started.body).toMatchObject({
      status: "completed",
      sessionId,
      intent: "stop",
      trigger: "session",
    });
    const session = await api.call("GET", `/sessions/${sessionId}`);
    expect(session.body.waiting).toBeNull();
    expect(session.body.intent).toBe("stop");

    // The cancelled run takes no more answers: the next message starts afresh.
    const again = await say(sessionId, "order");
    expect(again.body).toMatchObject({ status: "waiting_input", intent: "order" });
    expect(again.body.executionId).not.toBe(executionId);
  });

  it("leaves a message matching no interrupting intent to the waiting run, even one matching another intent", async () => {
    const { sessionId, executionId } = await waitingSession();
    const answer = await say(sessionId, "help");
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: "completed", executionId, output: "ordered help" });
    expect(answer.body.interrupted).toBeUndefined();
    expect((await api.call("GET", `/executions/${executionId}`)).body.status).toBe("completed");
    // With no run waiting, the interrupting intent is an ordinary turn.
    const plain = await say(sessionId, "stop");
    expect(plain.body).toMatchObject({ status: "completed", intent: "stop", output: "stopped: stop" });
    expect(plain.body.interrupted).toBeUndefined();
  });

  it("answers 409 to one of two messages sent at once, the other interrupting the run once", async () => {
    const { sessionId, executionId } = await waitingSession();
    const both = await Promise.all([say(sessionId, "stop"), say(sessionId, "cancel")]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    const busy = both.find((r) => r.status === 409);
    expect(["session_busy", "session_conflict"]).toContain(busy?.body.error.code);
    const ok = both.find((r) => r.status === 200);
    expect(ok?.body).toMatchObject({ status: "completed", intent: "stop", interrupted: executionId });
    const old = await api.call("GET", `/executions/${executionId}`);
    expect(old.body).toMatchObject({ status: "cancelled", error: { code: "interrupted" } });
  });

  it("is refused by validation when it is not a boolean, or names no protocol", async () => {
    const bad = structuredClone(shopDocument) as { intents: Record<string, unknown>[] };
    bad.intents[1]!.interrupts = "yes";
    const put = await api.call("PUT", "/documents/shop-bad", { body: bad });
    expect(put.status).toBe(422);
    expect(JSON.stringify(put.body)).toContain("$.intents[1].interrupts");
    expect((await api.call("GET", "/documents/shop-bad")).status).toBe(404);

    const aimless = structuredClone(shopDocument) as { intents: Record<string, unknown>[] };
    delete aimless.intents[1]!.protocol;
    const refused = await api.call("PUT", "/documents/shop-aimless", { body: aimless });
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.body)).toContain("$.intents[1].protocol");
  });
});
