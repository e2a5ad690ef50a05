import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLlm } from "../../../lib/adapters/llm/create-llm.ts";
import { loadConfig } from "../../../lib/config.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../../support/fake-openai.ts";

let fake: FakeOpenAi;
beforeAll(async () => {
  fake = await startFakeOpenAi();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.double.requests.length = 0;
});

const ask = { messages: [{ role: "user" as const, content: "ping" }] };

/** The bearer token the fake server received for one completion made with this environment. */
async function keyUsed(env: Record<string, string>): Promise<string | undefined> {
  const llm = createLlm(loadConfig({ LLM_BASE_URL: fake.baseURL, ...env }));
  await llm.complete(ask);
  return String(fake.double.requests.at(-1)?.headers.authorization ?? "").replace(/^Bearer /, "");
}

describe("createLlm", () => {
  it("is the offline model when no key is configured", async () => {
    const llm = createLlm(loadConfig({}));
    expect(llm.offline).toBe(true);
    expect((await llm.complete(ask)).text).toBe("[offline] ping");
  });

  it("treats an empty key as no key", () => {
    expect(createLlm(loadConfig({ LLM_API_KEY: "", OPENAI_API_KEY: "" })).offline).toBe(true);
  });

  it("talks to the configured endpoint with the configured default model when a key is set", async () => {
    const llm = createLlm(
      loadConfig({ LLM_API_KEY: "k1", LLM_BASE_URL: fake.baseURL, LLM_MODEL: "configured-model" }),
    );
    expect(llm.offline).toBe(false);
    const response = await llm.complete(ask);
    expect(response).toMatchObject({ text: "reply: ping", model: "configured-model" });
    expect(fake.completions()[0]?.model).toBe("configured-model");
  });

  it("prefers LLM_API_KEY, then OPENAI_API_KEY, then OPENROUTER_API_KEY", async () => {
    expect(
      await keyUsed({ LLM_API_KEY: "llm", OPENAI_API_KEY: "openai", OPENROUTER_API_KEY: "router" }),
    ).toBe("llm");
    expect(await keyUsed({ OPENAI_API_KEY: "openai", OPENROUTER_API_KEY: "router" })).toBe("openai");
    expect(await keyUsed({ OPENROUTER_API_KEY: "router" })).toBe("router");
  });

  it("points an OpenRouter-only configuration at OpenRouter unless LLM_BASE_URL says otherwise", () => {
    expect(loadConfig({ OPENROUTER_API_KEY: "router" }).llmBaseUrl).toBe("https://openrouter.ai/api/v1");
    expect(loadConfig({ OPENROUTER_API_KEY: "router", LLM_BASE_URL: fake.baseURL }).llmBaseUrl).toBe(
      fake.baseURL,
    );
  });

  it("applies LLM_MAX_RETRIES and LLM_TIMEOUT_MS", async () => {
    fake.queue({ status: 503, body: { error: { message: "busy" } }, headers: { "retry-after-ms": "5" } });
    const noRetries = createLlm(
      loadConfig({ LLM_API_KEY: "k", LLM_BASE_URL: fake.baseURL, LLM_MAX_RETRIES: "0" }),
    );
    await expect(noRetries.complete(ask)).rejects.toMatchObject({ code: "llm_server_error" });
    expect(fake.completions()).toHaveLength(1);

    fake.setDelay(2_000);
    try {
      const quick = createLlm(
        loadConfig({ LLM_API_KEY: "k", LLM_BASE_URL: fake.baseURL, LLM_TIMEOUT_MS: "100" }),
      );
      await expect(quick.complete(ask)).rejects.toMatchObject({ code: "llm_timeout" });
    } finally {
      fake.setDelay(0);
    }
  });

  it("prices each answer from LLM_PRICES over the default table; an unpriced model has no cost", async () => {
    const prices = JSON.stringify({
      "priced-model": { inputPerMillionUsd: 1_000, outputPerMillionUsd: 2_000 },
    });
    const config = loadConfig({ LLM_API_KEY: "k", LLM_BASE_URL: fake.baseURL, LLM_PRICES: prices });
    expect(config.llmPrices["gpt-4o-mini"]).toEqual({ inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 });
    const llm = createLlm(config);
    // The fake server reports 7 prompt and 3 completion tokens.
    expect((await llm.complete({ ...ask, model: "priced-model" })).costUsd).toBeCloseTo(0.013, 10);
    const unpriced = await llm.complete({ ...ask, model: "unpriced-model" });
    expect(unpriced.usage).toEqual({ promptTokens: 7, completionTokens: 3, totalTokens: 10 });
    expect(unpriced).not.toHaveProperty("costUsd");
    expect((await createLlm(loadConfig({})).complete(ask)).costUsd).toBe(0);
  });

  it("refuses an LLM_PRICES that is not JSON or not a table of prices", () => {
    expect(() => loadConfig({ LLM_PRICES: "{nope" })).toThrow(/LLM_PRICES is not JSON/);
    expect(() => loadConfig({ LLM_PRICES: JSON.stringify({ m: { inputPerMillionUsd: -1 } }) })).toThrow(
      /LLM_PRICES must map/,
    );
  });
});
