/** Prompt steps and their models: tokens and cost on the step record. */
import { describe, expect, it } from "vitest";
import { createOfflineLlm } from "../../lib/adapters/llm/offline.ts";
import { createOpenAiLlm } from "../../lib/adapters/llm/openai.ts";
import { StepRecordSchema } from "../../lib/core/execution-record.ts";
import { runProtocol } from "../../lib/engine/engine.ts";
import { completion } from "../support/fake-openai.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

const PRICES = { "priced-model": { inputPerMillionUsd: 1_000, outputPerMillionUsd: 2_000 } };
const pricedLlm = () =>
  createOpenAiLlm({
    apiKey: "test-key",
    baseURL: servers.openai.baseURL,
    model: "priced-model",
    maxRetries: 0,
    prices: PRICES,
  });

const twoPrompts = documentOf({
  protocols: [
    {
      name: "p",
      steps: [
        { id: "a", action: "prompt", prompt: "one" },
        { id: "b", action: "prompt", prompt: "two", model: "unpriced-model" },
      ],
    },
  ],
});

describe("tokens and cost on the step record", () => {
  it("records the model, the tokens and the cost from the price table; an unpriced model has no cost", async () => {
    servers.openai.queue(completion("first", "priced-model"), completion("second", "unpriced-model"));
    const result = await runProtocol({
      document: twoPrompts,
      protocol: "p",
      ports: servers.ports({ llm: pricedLlm() }),
    });
    expect(result.status).toBe("completed");
    const [a, b] = result.steps;
    expect(a).toMatchObject({
      model: "priced-model",
      usage: { promptTokens: 7, completionTokens: 3, totalTokens: 10 },
    });
    // 7 × 1000 + 3 × 2000 dollars per million tokens.
    expect(a?.costUsd).toBeCloseTo(0.013, 10);
    expect(b).toMatchObject({ model: "unpriced-model", usage: { totalTokens: 10 } });
    expect(b).not.toHaveProperty("costUsd");
    // The history's schema keeps the cost (and its absence).
    expect(StepRecordSchema.parse(a).costUsd).toBeCloseTo(0.013, 10);
    expect(StepRecordSchema.parse(b).costUsd).toBeUndefined();
  });

  it("records the offline model's zero cost as a known zero", async () => {
    const result = await runProtocol({
      document: twoPrompts,
      protocol: "p",
      ports: servers.ports({ llm: createOfflineLlm() }),
    });
    expect(result.steps.map((step) => [step.model, step.costUsd])).toEqual([
      ["offline", 0],
      ["offline", 0],
    ]);
  });
});
