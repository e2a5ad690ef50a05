/** A session's conversation: remembered across messages and sent to prompt steps with memory. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;

const chatDocument = {
  version: "2.2",
  intents: [{ name: "chat", patterns: ["hi", "lamp", "order"], protocol: "chat" }],
  protocols: [
    {
      name: "chat",
      memory: { turns: 4 },
      steps: [{ id: "answer", action: "prompt", prompt: "{user_input}" }],
    },
  ],
};

beforeAll(async () => {
  api = await startApiFixture();
  expect((await api.call("PUT", "/documents/chat", { body: chatDocument })).status).toBe(201);
});
afterAll(async () => {
  await api?.close();
});

describe("session memory", () => {
  it("sends the earlier messages and replies of the session, oldest first, to the next prompt", async () => {
    const created = await api.call("POST", "/sessions", { body: { document: "chat", userId: "u1" } });
    const sessionId = created.body.sessionId as string;
    const say = (text: string) => api.call("POST", `/sessions/${sessionId}/messages`, { body: { text } });

    expect((await say("hi, I bought a lamp")).body.replies).toEqual(["reply: hi, I bought a lamp"]);
    await say("my order is late");
    await say("which lamp was it?");

    const sent = api.llm.completions().slice(-3);
    expect(sent[0]?.messages).toEqual([{ role: "user", content: "hi, I bought a lamp" }]);
    expect(sent[2]?.messages).toEqual([
      { role: "user", content: "hi, I bought a lamp" },
      { role: "assistant", content: "reply: hi, I bought a lamp" },
      { role: "user", content: "my order is late" },
      { role: "assistant", content: "reply: my order is late" },
      { role: "user", content: "which lamp was it?" },
    ]);
  });

  it("keeps no more turns than MEMORY_MAX_TURNS, dropping the oldest first", async () => {
    const bounded = await startApiFixture({ MEMORY_MAX_TURNS: "3" });
    try {
      expect((await bounded.call("PUT", "/documents/chat", { body: chatDocument })).status).toBe(201);
      const created = await bounded.call("POST", "/sessions", { body: { document: "chat", userId: "u2" } });
      const sessionId = created.body.sessionId as string;
      const say = (text: string) =>
        bounded.call("POST", `/sessions/${sessionId}/messages`, { body: { text } });
      await say("hi there");
      await say("lamp please");
      await say("order status");

      // memory.turns is 4, but the session kept only the last 3 turns of the 4 before this message.
      expect(bounded.llm.completions().at(-1)?.messages).toEqual([
        { role: "assistant", content: "reply: hi there" },
        { role: "user", content: "lamp please" },
        { role: "assistant", content: "reply: lamp please" },
        { role: "user", content: "order status" },
      ]);
    } finally {
      await bounded.close();
    }
  });
});
