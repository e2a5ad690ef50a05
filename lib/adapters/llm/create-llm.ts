/** Chooses the LLM port from the configuration: the OpenAI-compatible one when a key is set. */
import type { Config } from "../../config.ts";
import type { LlmPort } from "../../ports.ts";
import { createOfflineLlm } from "./offline.ts";
import { createOpenAiLlm } from "./openai.ts";

export function createLlm(config: Config): LlmPort {
  if (!config.llmApiKey) return createOfflineLlm();
  return createOpenAiLlm({
    apiKey: config.llmApiKey,
    ...(config.llmBaseUrl ? { baseURL: config.llmBaseUrl } : {}),
    model: config.LLM_MODEL,
    timeoutMs: config.LLM_TIMEOUT_MS,
    maxRetries: config.LLM_MAX_RETRIES,
    prices: config.llmPrices,
  });
}
