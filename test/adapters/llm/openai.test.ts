import { MovaError } from "../../../lib/errors.ts";
import { createServer } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createOpenAiLlm } from "../../../lib/adapters/llm/openai.ts";
import { completion, type FakeOpenAi, startFakeOpenAi } from "../../support/fake-openai.ts";

const API_KEY = "sk-test-0123456789-very-secret";
const ask = (content: string) => ({ messages: [{ role: "user" as const, content }] });
// The SDK honours retry-after-ms, which keeps its retries fast in tests.
const fastRetry = { "retry-after-ms": "5" };

async function failure(promise: Promise<unknown>): Promise<MovaError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(MovaError);
  return error as MovaError;
}

function expectNoKey(error: MovaError) {
  const everything = [
    error.message,
    String(error.stack),
    JSON.stringify(error),
    String((error as Error).cause ?? ""),
  ].join("\n");
  expect(everything).not.toContain(API_KEY);
}

let fake: FakeOpenAi;
beforeAll(async () => {
  fake = await startFakeOpenAi();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.double.requests.length = 0;
  fake.setDelay(0);
});

describe("createOpenAiLlm", () => {
  it("returns the completion text, the model and the token usage", async () => {
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "default-model" });
    expect(llm.offline).toBe(false);
    const response = await llm.complete(ask("hello"));
    expect(response).toEqual({
      text: "reply: hello",
      model: "default-model",
      usage: { promptTokens: 7, completionTokens: 3, totalTokens: 10 },
    });
    expect(fake.double.requests[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it("sends the step's model, temperature, max_tokens and every message", async () => {
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "default-model" });
    const response = await llm.complete({
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "weather?" },
      ],
      model: "step-model",
      temperature: 0.2,
      maxTokens: 42,
    });
    expect(response.model).toBe("step-model");
    const sent = fake.completions()[0];
    expect(sent).toMatchObject({
      model: "step-model",
      temperature: 0.2,
      max_tokens: 42,
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "weather?" },
      ],
    });
    expect(sent).not.toHaveProperty("max_completion_tokens");
  });

  it("leaves temperature and max_tokens out when the step does not set them", async () => {
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m" });
    await llm.complete(ask("x"));
    const sent = fake.completions()[0];
    expect(sent).not.toHaveProperty("temperature");
    expect(sent).not.toHaveProperty("max_tokens");
  });

  it("reports the model the server says answered", async () => {
    fake.queue(completion("routed", "provider/actual-model"));
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "provider/auto" });
    expect((await llm.complete(ask("x"))).model).toBe("provider/actual-model");
  });

  it("sends the default headers given", async () => {
    const llm = createOpenAiLlm({
      apiKey: API_KEY,
      baseURL: fake.baseURL,
      model: "m",
      defaultHeaders: { "HTTP-Referer": "https://mova.example" },
    });
    await llm.complete(ask("x"));
    expect(fake.double.requests[0]?.headers["http-referer"]).toBe("https://mova.example");
  });

  it("retries a 429 through the SDK and then succeeds", async () => {
    fake.queue({ status: 429, body: { error: { message: "slow down" } }, headers: fastRetry });
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m", maxRetries: 2 });
    const response = await llm.complete(ask("again"));
    expect(response.text).toBe("reply: again");
    expect(fake.completions()).toHaveLength(2);
  });

  it("gives up on repeated 500s with a retryable llm_server_error after maxRetries", async () => {
    const serverError = { status: 500, body: { error: { message: "boom" } }, headers: fastRetry };
    fake.queue(serverError, serverError, serverError);
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m", maxRetries: 2 });
    const error = await failure(llm.complete(ask("x")));
    expect(error.code).toBe("llm_server_error");
    expect(error.retryable).toBe(true);
    expect(error.status).toBe(500);
    expect(fake.completions()).toHaveLength(3);
  });

  it("reports a 429 that outlasts the retries as llm_rate_limited, retryable", async () => {
    const limited = { status: 429, body: { error: { message: "quota" } }, headers: fastRetry };
    fake.queue(limited, limited);
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m", maxRetries: 1 });
    const error = await failure(llm.complete(ask("x")));
    expect([error.code, error.retryable, error.status]).toEqual(["llm_rate_limited", true, 429]);
    expect(fake.completions()).toHaveLength(2);
  });

  it("does not retry a 401 and never repeats the key, even when the server echoes it", async () => {
    fake.queue({ status: 401, body: { error: { message: `Incorrect API key provided: ${API_KEY}` } } });
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m", maxRetries: 2 });
    const error = await failure(llm.complete(ask("x")));
    expect(error.code).toBe("llm_unauthorized");
    expect(error.retryable).toBe(false);
    expect(error.status).toBe(401);
    expect(error.message).toContain("[redacted]");
    expectNoKey(error);
    expect(fake.completions()).toHaveLength(1);
  });

  it("reports another 4xx as llm_bad_request, not retryable", async () => {
    fake.queue({ status: 400, body: { error: { message: "unknown model" } } });
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m" });
    const error = await failure(llm.complete(ask("x")));
    expect([error.code, error.retryable, error.status]).toEqual(["llm_bad_request", false, 400]);
    expect(error.message).toContain("unknown model");
  });

  it("times out a slow server within the step's timeout, SDK retries included", async () => {
    fake.setDelay(2_000);
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m", maxRetries: 2 });
    const started = Date.now();
    const error = await failure(llm.complete({ ...ask("x"), timeoutMs: 150 }));
    expect(error.code).toBe("llm_timeout");
    expect(error.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("keeps to the timeout while the SDK waits out a long retry-after", async () => {
    fake.queue({ status: 429, body: { error: { message: "later" } }, headers: { "retry-after-ms": "3000" } });
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m", maxRetries: 2 });
    const started = Date.now();
    const error = await failure(llm.complete({ ...ask("x"), timeoutMs: 150 }));
    expect([error.code, error.retryable]).toEqual(["llm_timeout", true]);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(fake.completions()).toHaveLength(1);
  });

  it("reuses one connection for sequential completions", async () => {
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m" });
    await llm.complete(ask("warm up"));
    const before = fake.double.connections;
    for (let i = 0; i < 4; i++) await llm.complete(ask(`n${i}`));
    expect(fake.double.connections).toBe(before);
  });

  it("uses the port's default timeout when the request gives none", async () => {
    fake.setDelay(2_000);
    const llm = createOpenAiLlm({
      apiKey: API_KEY,
      baseURL: fake.baseURL,
      model: "m",
      timeoutMs: 150,
      maxRetries: 0,
    });
    const error = await failure(llm.complete(ask("x")));
    expect(error.code).toBe("llm_timeout");
  });

  it("reports a body that is not JSON as llm_bad_response, not retryable", async () => {
    fake.queue({ status: 200, body: '{"choices": [', headers: { "content-type": "application/json" } });
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m" });
    const error = await failure(llm.complete(ask("x")));
    expect([error.code, error.retryable]).toEqual(["llm_bad_response", false]);
  });

  it("reports a completion with no choices or no content as llm_bad_response", async () => {
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m" });
    fake.queue({ status: 200, body: { id: "x", object: "chat.completion", model: "m", choices: [] } });
    expect((await failure(llm.complete(ask("x")))).code).toBe("llm_bad_response");
    fake.queue({
      status: 200,
      body: { id: "x", model: "m", choices: [{ index: 0, message: { role: "assistant", content: null } }] },
    });
    expect((await failure(llm.complete(ask("x")))).code).toBe("llm_bad_response");
    fake.queue({ status: 200, body: "plain text, not a completion" });
    expect((await failure(llm.complete(ask("x")))).code).toBe("llm_bad_response");
  });

  it("reports zero usage when the server sends none", async () => {
    const reply = completion("no usage");
    delete (reply.body as { usage?: unknown }).usage;
    fake.queue(reply);
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m" });
    expect((await llm.complete(ask("x"))).usage).toEqual({
      promptTokens: 0,
      completionTokens: 0,
      totalTokens: 0,
    });
  });

  it("reports an unreachable endpoint as llm_network, retryable, without the key", async () => {
    const port = await closedPort();
    const llm = createOpenAiLlm({
      apiKey: API_KEY,
      baseURL: `http://127.0.0.1:${port}/v1`,
      model: "m",
      maxRetries: 0,
    });
    const error = await failure(llm.complete(ask("x")));
    expect([error.code, error.retryable]).toEqual(["llm_network", true]);
    expectNoKey(error);
  });

  it("reports the caller's abort as cancelled, before or during the call", async () => {
    const llm = createOpenAiLlm({ apiKey: API_KEY, baseURL: fake.baseURL, model: "m" });
    const aborted = new AbortController();
    aborted.abort();
    expect((await failure(llm.complete(ask("x"), aborted.signal))).code).toBe("cancelled");
    expect(fake.completions()).toHaveLength(0);

    fake.setDelay(2_000);
    const controller = new AbortController();
    const pending = llm.complete(ask("x"), controller.signal);
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const error = await failure(pending);
    expect([error.code, error.retryable]).toEqual(["cancelled", false]);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("refuses an empty key", () => {
    expect(() => createOpenAiLlm({ apiKey: "", model: "m" })).toThrow(MovaError);
  });
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
