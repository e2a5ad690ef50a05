export { blockedAddressReason, isBlockedAddress } from "./address-guard.ts";
export { systemClock } from "./clock.ts";
export {
  createHttpTools,
  createToolsFromConfig,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_TOOL_TIMEOUT_MS,
  type HttpToolsOptions,
} from "./http-tools.ts";
export { createLlm } from "./llm.ts";
export { createOfflineLlm, OFFLINE_MODEL, OFFLINE_PREFIX } from "./llm-offline.ts";
export { createOpenAiLlm, type OpenAiLlmOptions } from "./llm-openai.ts";
export { createNodeFetch, type NodeFetchOptions } from "./node-fetch.ts";
