/**
 * The model used when no LLM is configured: it answers with the rendered prompt, marked as
 * offline, so documents run end to end (CLI, tests, local stack) without a provider.
 */
import { MovaError } from "../../errors.ts";
import type { LlmPort, LlmRequest, LlmResponse } from "../../ports.ts";
import { smallestInstance } from "../../mova/response-schema.ts";

const OFFLINE_PREFIX = "[offline] ";
const OFFLINE_MODEL = "offline";

export function createOfflineLlm(): LlmPort {
  return {
    offline: true,
    async complete(request: LlmRequest, signal?: AbortSignal): Promise<LlmResponse> {
      if (signal?.aborted) throw new MovaError("cancelled", "the LLM call was cancelled before it started");
      const prompt =
        request.messages.findLast((message) => message.role === "user") ?? request.messages.at(-1);
      // Asked for JSON of a shape, it answers with the smallest instance of that shape.
      const text = request.responseFormat
        ? JSON.stringify(smallestInstance(request.responseFormat.schema))
        : `${OFFLINE_PREFIX}${prompt?.content ?? ""}`;
      // Streamed word by word (each word with the spaces before it), as a provider streams tokens.
      if (request.onDelta) for (const word of text.match(/\s*\S+|\s+$/g) ?? []) request.onDelta(word);
      return {
        text,
        model: OFFLINE_MODEL,
        usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
        // The offline model is free: a known cost of zero, not an unknown one.
        costUsd: 0,
        offline: true,
      };
    },
  };
}
