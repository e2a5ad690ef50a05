/**
 * An OpenAI-compatible chat completions server on loopback, for tests and benchmarks:
 * the real `openai` SDK talks to it over HTTP. By default it answers with
 * `reply: <last user message>`; tests script statuses, delays and bodies per request.
 */
import { smallestInstance } from "../../lib/mova/response-schema.ts";
import { type HttpDouble, type RecordedRequest, type ScriptedReply, startHttpDouble } from "./http-double.ts";

export interface FakeOpenAi {
  /** The base URL to give the SDK (ends in /v1). */
  baseURL: string;
  double: HttpDouble;
  /** The chat completion requests received, parsed. */
  completions(): Array<{
    model: string;
    messages: Array<{ role: string; content: string }>;
    [k: string]: unknown;
  }>;
  /** Sets how the next completions are answered, in order (then the default answer). */
  queue(...replies: ScriptedReply[]): void;
  /** Sets the default answer text from the request. */
  answerWith(
    answer: (request: { model: string; messages: Array<{ role: string; content: string }> }) => string,
  ): void;
  /**
   * Answers every request for `model` with `reply` (an error status, say) instead of the
   * default answer, until cleared with `undefined`; queued replies still come first.
   */
  answerModel(model: string, reply: ScriptedReply | undefined): void;
  /** Fixed delay before every default answer. */
  setDelay(ms: number): void;
  /** A streamed answer's events written this far apart (0, the default: all at once). */
  setStreamPace(ms: number): void;
  /**
   * Each request waits for `gate()`, called as it arrives, to settle before it is answered (a
   * test proving that calls overlap); `undefined` stops holding.
   */
  holdUntil(gate: (() => Promise<unknown>) | undefined): void;
  close(): Promise<void>;
}

export function completion(text: string, model = "fake-model"): ScriptedReply {
  return {
    status: 200,
    body: {
      id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [
        { index: 0, message: { role: "assistant", content: text }, finish_reason: "stop", logprobs: null },
      ],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    },
  };
}

/** An answer that calls functions: `arguments` objects are sent as JSON text, strings as they are. */
export function toolCallsCompletion(
  calls: Array<{ name: string; arguments: unknown; id?: string }>,
  model = "fake-model",
): ScriptedReply {
  return {
    status: 200,
    body: {
      id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: null,
            tool_calls: calls.map((call, index) => ({
              id: call.id ?? `call_${index}_${Math.random().toString(36).slice(2, 8)}`,
              type: "function",
              function: {
                name: call.name,
                arguments:
                  typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments),
              },
            })),
          },
          finish_reason: "tool_calls",
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    },
  };
}

/**
 * A streamed answer as OpenAI sends it (server-sent events): a role chunk, the text word by
 * word, a finish chunk, then the usage chunk and `[DONE]`.
 */
export function streamedCompletion(text: string, model = "fake-model", paceMs = 0): ScriptedReply {
  const base = { id: "chatcmpl-stream", object: "chat.completion.chunk", created: 0, model };
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  });
  const events = [
    chunk({ role: "assistant", content: "" }),
    ...(text.match(/\s*\S+|\s+$/g) ?? []).map((word) => chunk({ content: word })),
    chunk({}, "stop"),
    { ...base, choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } },
  ];
  const parts = [...events.map((event) => `data: ${JSON.stringify(event)}\n\n`), "data: [DONE]\n\n"];
  const headers = { "content-type": "text/event-stream" };
  // Paced: each event written paceMs after the one before, as a model writes over time.
  return paceMs > 0
    ? { status: 200, headers, parts, partDelayMs: paceMs }
    : { status: 200, headers, body: parts.join("") };
}

export async function startFakeOpenAi(): Promise<FakeOpenAi> {
  const double = await startHttpDouble();
  let delayMs = 0;
  let streamPaceMs = 0;
  let answer = (request: { model: string; messages: Array<{ role: string; content: string }> }): string => {
    const users = request.messages.filter((m) => m.role === "user");
    return `reply: ${users.at(-1)?.content ?? ""}`;
  };
  // A test's own answer (answerWith) is given even when a schema is asked for.
  let answerSet = false;
  const byModel = new Map<string, ScriptedReply>();
  let gate: (() => Promise<unknown>) | undefined;
  const handler = async (request: RecordedRequest): Promise<ScriptedReply> => {
    if (gate) await gate();
    const body = request.json as { model: string; messages: Array<{ role: string; content: string }> };
    const scripted = byModel.get(body?.model);
    if (scripted) return scripted;
    // Asked for JSON of a schema, it answers with the smallest instance (as the offline model does).
    const format = (body as { response_format?: { type?: string; json_schema?: { schema?: unknown } } })
      ?.response_format;
    if ((body as { stream?: boolean })?.stream === true) {
      return { ...streamedCompletion(answer(body), body?.model, streamPaceMs), delayMs };
    }
    if (format?.type === "json_schema" && !answerSet) {
      return {
        ...completion(JSON.stringify(smallestInstance(format.json_schema?.schema)), body?.model),
        delayMs,
      };
    }
    return { ...completion(answer(body), body?.model), delayMs };
  };
  double.route("POST", "/v1/chat/completions", handler);
  return {
    baseURL: `${double.url}/v1`,
    double,
    completions: () =>
      double.requests.filter((r) => r.path === "/v1/chat/completions").map((r) => r.json as never),
    queue: (...replies) => double.queue("POST", "/v1/chat/completions", ...replies),
    answerWith(fn) {
      answer = fn;
      answerSet = true;
    },
    answerModel(model, reply) {
      if (reply) byModel.set(model, reply);
      else byModel.delete(model);
    },
    setDelay(ms) {
      delayMs = ms;
    },
    setStreamPace(ms) {
      streamPaceMs = ms;
    },
    holdUntil(next) {
      gate = next;
    },
    close: () => double.close(),
  };
}
