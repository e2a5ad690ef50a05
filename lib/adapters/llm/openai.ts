/**
 * The LLM port over the `openai` SDK: any OpenAI-compatible chat completions endpoint
 * (OpenAI, OpenRouter, a local server). One client per port so connections are reused.
 */
import { MovaError } from "../../errors.ts";
import OpenAI, { APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from "openai/resources/chat/completions";
import type { ChatMessage, LlmPort, LlmRequest, LlmResponse, LlmToolCall } from "../../ports.ts";
import { createNodeFetch } from "../http/node-fetch.ts";
import { type PriceTable, costOf, priceOf } from "../../core/cost.ts";

interface OpenAiLlmOptions {
  apiKey: string;
  /** Defaults to OpenAI's endpoint; never read from the environment here. */
  baseURL?: string;
  model: string;
  /** Bounds one `complete` call, the SDK's own retries included (default 30 s). */
  timeoutMs?: number;
  /** The SDK's retries on 429, 5xx, timeouts and network errors (default 2). */
  maxRetries?: number;
  defaultHeaders?: Record<string, string>;
  /** Prices per model: each answer's `costUsd` (none for a model the table does not know). */
  prices?: PriceTable;
  /**
   * The SDK's transport. Defaults to a keep-alive `node:http` fetch (./node-fetch.ts), which
   * costs less than half the CPU of Node's built-in `fetch` per call; pass `globalThis.fetch`
   * to use the built-in one.
   */
  fetch?: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
}

const DEFAULT_BASE_URL = "https://api.openai.com/v1";
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RETRIES = 2;

export function createOpenAiLlm(options: OpenAiLlmOptions): LlmPort {
  if (!options.apiKey) throw new MovaError("llm_unauthorized", "the LLM API key is empty");
  const defaultTimeoutMs = positiveOr(options.timeoutMs, DEFAULT_TIMEOUT_MS);
  // Everything is passed explicitly so the SDK reads nothing from the environment
  // (OPENAI_BASE_URL, OPENAI_ORG_ID, ...): the configuration lives in lib/config.ts.
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL || DEFAULT_BASE_URL,
    organization: null,
    project: null,
    webhookSecret: null,
    timeout: defaultTimeoutMs,
    maxRetries: Math.max(0, Math.floor(options.maxRetries ?? DEFAULT_MAX_RETRIES)),
    fetch: options.fetch ?? createNodeFetch(),
    ...(options.defaultHeaders ? { defaultHeaders: options.defaultHeaders } : {}),
  });
  const redact = (text: string): string =>
    options.apiKey ? text.split(options.apiKey).join("[redacted]") : text;

  return {
    offline: false,
    async complete(request: LlmRequest, signal?: AbortSignal): Promise<LlmResponse> {
      if (signal?.aborted) throw new MovaError("cancelled", "the LLM call was cancelled before it started");
      const timeoutMs = positiveOr(request.timeoutMs, defaultTimeoutMs);
      const model = request.model || options.model;

      // The SDK's timeout covers one attempt up to the response headers, and its retry
      // back-off does not watch the signal; this deadline bounds the whole call (retries,
      // back-off and body included), as a step's timeout_ms promises, and the race below
      // returns as soon as the deadline passes or the caller cancels.
      const controller = new AbortController();
      let timedOut = false;
      let stop: (() => void) | undefined;
      const stopped = new Promise<never>((_, reject) => {
        stop = () => reject(new Error("stopped"));
      });
      const deadline = setTimeout(() => {
        timedOut = true;
        controller.abort();
        stop?.();
      }, timeoutMs);
      const onCallerAbort = () => {
        controller.abort();
        stop?.();
      };
      signal?.addEventListener("abort", onCallerAbort, { once: true });

      const params = {
        model,
        messages: request.messages.map(toSdkMessage),
        ...(request.tools && request.tools.length > 0
          ? {
              tools: request.tools.map((tool) => ({
                type: "function" as const,
                function: {
                  name: tool.name,
                  ...(tool.description ? { description: tool.description } : {}),
                  parameters: tool.parameters,
                },
              })),
            }
          : {}),
        ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
        // `max_tokens` rather than `max_completion_tokens`: every OpenAI-compatible server knows it.
        ...(request.maxTokens === undefined ? {} : { max_tokens: request.maxTokens }),
        ...(request.responseFormat && {
          response_format: {
            type: "json_schema" as const,
            json_schema: {
              name: request.responseFormat.name,
              schema: request.responseFormat.schema,
              strict: request.responseFormat.strict,
            },
          },
        }),
      };
      const callOptions = { timeout: timeoutMs, signal: controller.signal };
      const call: Promise<ChatCompletion> = request.onDelta
        ? streamCompletion(client, params, callOptions, request.onDelta)
        : client.chat.completions.create(params, callOptions);
      // Once the race is lost the SDK call still settles (as an abort); nobody waits for it.
      call.catch(() => undefined);

      let completion: ChatCompletion;
      try {
        completion = await Promise.race([call, stopped]);
      } catch (error) {
        if (signal?.aborted) throw new MovaError("cancelled", "the LLM call was cancelled");
        if (timedOut) {
          throw new MovaError("llm_timeout", `the LLM did not answer within ${timeoutMs} ms`, {
            retryable: true,
          });
        }
        throw toPortError(error, redact);
      } finally {
        clearTimeout(deadline);
        signal?.removeEventListener("abort", onCallerAbort);
      }
      const response = toResponse(completion, model);
      // The answering model's price, else the requested one's (a router may answer with another name).
      const priced = priceOf(options.prices, response.model) ? response.model : model;
      const costUsd = costOf(options.prices, priced, response.usage);
      if (costUsd !== undefined) response.costUsd = costUsd;
      return response;
    },
  };
}

function toResponse(completion: ChatCompletion | unknown, requestedModel: string): LlmResponse {
  if (
    !completion ||
    typeof completion !== "object" ||
    !Array.isArray((completion as ChatCompletion).choices)
  ) {
    throw new MovaError("llm_bad_response", "the LLM response is not a chat completion");
  }
  const { choices, model, usage } = completion as ChatCompletion;
  const content = choices[0]?.message?.content;
  if (choices.length === 0) throw new MovaError("llm_bad_response", "the LLM response has no choices");
  const toolCalls = readToolCalls(choices[0]?.message?.tool_calls);
  if (toolCalls.length === 0 && (typeof content !== "string" || content === "")) {
    const refusal = choices[0]?.message?.refusal;
    throw new MovaError(
      "llm_bad_response",
      refusal ? "the LLM refused to answer" : "the LLM response has no text content",
    );
  }
  return {
    text: typeof content === "string" ? content : "",
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    model: typeof model === "string" && model ? model : requestedModel,
    usage: {
      promptTokens: tokenCount(usage?.prompt_tokens),
      completionTokens: tokenCount(usage?.completion_tokens),
      totalTokens: tokenCount(
        usage?.total_tokens ?? (usage ? usage.prompt_tokens + usage.completion_tokens : 0),
      ),
    },
  };
}

function toPortError(error: unknown, redact: (text: string) => string): MovaError {
  if (error instanceof MovaError) return error;
  if (error instanceof APIUserAbortError) return new MovaError("cancelled", "the LLM call was cancelled");
  if (error instanceof APIConnectionTimeoutError) {
    return new MovaError("llm_timeout", "the LLM request timed out", { retryable: true });
  }
  if (error instanceof APIError) {
    const status = error.status;
    const detail = redact(error.message);
    if (status === undefined) {
      // APIConnectionError: refused, reset, DNS failure, TLS failure.
      const cause = (error as { cause?: { code?: string; cause?: { code?: string }; message?: string } })
        .cause;
      const code = cause?.code ?? cause?.cause?.code;
      return new MovaError(
        "llm_network",
        redact(`the LLM endpoint could not be reached${code ? ` (${code})` : ""}`),
        {
          retryable: true,
        },
      );
    }
    if (status === 429)
      return new MovaError("llm_rate_limited", `the LLM rate limit was hit: ${detail}`, {
        retryable: true,
        status,
      });
    if (status >= 500)
      return new MovaError("llm_server_error", `the LLM server failed: ${detail}`, {
        retryable: true,
        status,
      });
    if (status === 408)
      return new MovaError("llm_timeout", `the LLM server timed out: ${detail}`, { retryable: true, status });
    const errorCode = (error as { code?: unknown }).code;
    if (status === 404 || errorCode === "model_not_found") {
      // What providers answer for a model they do not serve: the next model of a fallback list may.
      return new MovaError("llm_unknown_model", `the LLM endpoint does not know the model: ${detail}`, {
        status,
      });
    }
    if (status === 401 || status === 403) {
      return new MovaError("llm_unauthorized", `the LLM endpoint refused the credentials: ${detail}`, {
        status,
      });
    }
    return new MovaError("llm_bad_request", `the LLM endpoint rejected the request: ${detail}`, { status });
  }
  if (error instanceof SyntaxError)
    return new MovaError("llm_bad_response", "the LLM response is not valid JSON");
  const message = error instanceof Error ? error.message : String(error);
  return new MovaError("llm_bad_response", redact(`the LLM call failed: ${message}`));
}

function positiveOr(value: number | undefined, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.ceil(value) : fallback;
}

function tokenCount(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0;
}

function toSdkMessage(message: ChatMessage): ChatCompletionMessageParam {
  if (message.role === "tool") {
    return { role: "tool", content: message.content, tool_call_id: message.toolCallId ?? "" };
  }
  if (message.role === "assistant" && message.toolCalls && message.toolCalls.length > 0) {
    return {
      role: "assistant",
      content: message.content === "" ? null : message.content,
      tool_calls: message.toolCalls.map((call) => ({
        id: call.id,
        type: "function" as const,
        function: { name: call.name, arguments: call.arguments },
      })),
    };
  }
  return { role: message.role, content: message.content } as ChatCompletionMessageParam;
}

/** The model's function calls; anything of another shape is not a call this port can run. */
function readToolCalls(raw: unknown): LlmToolCall[] {
  if (!Array.isArray(raw)) return [];
  const calls: LlmToolCall[] = [];
  for (const item of raw) {
    const call = item as { id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown } };
    if (call?.type !== undefined && call.type !== "function") continue;
    const name = call?.function?.name;
    if (typeof name !== "string" || name === "") {
      throw new MovaError("llm_bad_response", "the LLM called a function without a name");
    }
    const args = call.function?.arguments;
    calls.push({
      id: typeof call.id === "string" && call.id ? call.id : `call_${calls.length}`,
      name,
      arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}),
    });
  }
  return calls;
}

type CompletionParams = Omit<ChatCompletionCreateParamsNonStreaming, "stream">;

/**
 * A streamed completion (`stream: true`, usage in the last chunk) put back together as the
 * completion it streams, each piece of text handed to `onDelta` as it arrives. A stream that
 * ends without a choice, or whose chunks are not chat completion chunks, is a bad response.
 */
async function streamCompletion(
  client: OpenAI,
  params: CompletionParams,
  options: { timeout: number; signal: AbortSignal },
  onDelta: (delta: string) => void,
): Promise<ChatCompletion> {
  const stream = await client.chat.completions.create(
    { ...params, stream: true, stream_options: { include_usage: true } },
    options,
  );
  let content = "";
  let model = "";
  let sawChoice = false;
  let usage: ChatCompletion["usage"];
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  for await (const chunk of stream) {
    if (!chunk || typeof chunk !== "object" || !Array.isArray(chunk.choices)) {
      throw new MovaError(
        "llm_bad_response",
        "the LLM stream sent a chunk that is not a chat completion chunk",
      );
    }
    if (typeof chunk.model === "string" && chunk.model) model = chunk.model;
    if (chunk.usage) usage = chunk.usage;
    const delta = chunk.choices[0]?.delta;
    if (!delta) continue;
    sawChoice = true;
    if (typeof delta.content === "string" && delta.content !== "") {
      content += delta.content;
      onDelta(delta.content);
    }
    for (const part of delta.tool_calls ?? []) {
      const index =
        typeof part.index === "number" && part.index >= 0 && part.index < 128 ? part.index : calls.length;
      calls[index] ??= { id: "", name: "", arguments: "" };
      const call = calls[index];
      if (part.id) call.id = part.id;
      if (part.function?.name) call.name += part.function.name;
      if (part.function?.arguments) call.arguments += part.function.arguments;
    }
  }
  if (!sawChoice) throw new MovaError("llm_bad_response", "the LLM stream ended without an answer");
  const toolCalls = calls
    .filter((call) => call !== undefined)
    .map((call) => ({
      id: call.id,
      type: "function" as const,
      function: { name: call.name, arguments: call.arguments },
    }));
  return {
    id: "streamed",
    object: "chat.completion",
    created: 0,
    model,
    choices: [
      {
        index: 0,
        finish_reason: toolCalls.length > 0 ? "tool_calls" : "stop",
        logprobs: null,
        message: {
          role: "assistant",
          content,
          refusal: null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
      },
    ],
    ...(usage ? { usage } : {}),
  };
}
