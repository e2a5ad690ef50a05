import { MovaError } from "../../../lib/errors.ts";
import { describe, expect, it } from "vitest";
import { createOfflineLlm } from "../../../lib/adapters/llm/offline.ts";

describe("createOfflineLlm", () => {
  it("says it is offline", () => {
    expect(createOfflineLlm().offline).toBe(true);
  });

  it("answers with the last user message, marked offline, with model offline and zero usage", async () => {
    const response = await createOfflineLlm().complete({
      messages: [
        { role: "system", content: "You are a weather bot" },
        { role: "user", content: "first question" },
        { role: "assistant", content: "an answer" },
        { role: "user", content: "Summarise for the user: 21°C in Київ" },
      ],
      model: "gpt-4o",
      temperature: 0.7,
    });
    expect(response).toEqual({
      text: "[offline] Summarise for the user: 21°C in Київ",
      model: "offline",
      usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
      costUsd: 0,
      offline: true,
    });
  });

  it("falls back to the last message when there is no user message, and to nothing when there are none", async () => {
    const llm = createOfflineLlm();
    expect((await llm.complete({ messages: [{ role: "system", content: "only system" }] })).text).toBe(
      "[offline] only system",
    );
    expect((await llm.complete({ messages: [] })).text).toBe("[offline] ");
  });

  it("honours an aborted signal", async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await createOfflineLlm()
      .complete({ messages: [{ role: "user", content: "x" }] }, controller.signal)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MovaError);
    expect((error as MovaError).code).toBe("cancelled");
  });
});
