/**
 * The API on the real local parts for the api-*.test.ts files: the local stack (dynalite,
 * fauxqs, Redis behind the Upstash bridge), a fake OpenAI-compatible server and a tool
 * server on loopback, the real handler built by buildApiDeps, and the local gateway.
 */
import { randomBytes } from "node:crypto";
import { DeleteMessageCommand, type Message, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { sha256Hex } from "../../lib/http/auth.ts";
import { buildApiDeps } from "../../lib/wiring/api.ts";
import type { ApiDeps } from "../../lib/http/deps.ts";
import { type ApiHandler, createApiHandler } from "../../lib/http/handler.ts";
import { RUN_EVENTS_PATH } from "../../lib/http/run-events-stream.ts";
import { buildStreamHandler } from "../../lib/wiring/stream.ts";
import { type Config, loadConfig } from "../../lib/config.ts";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { type Gateway, startGateway } from "../../infra/local/gateway.ts";
import { type LocalStack, type LocalStackOptions, startLocalStack } from "../../infra/local/stack.ts";
import { type FakeOpenAi, startFakeOpenAi } from "./fake-openai.ts";
import { type HttpDouble, startHttpDouble } from "./http-double.ts";

export interface ApiFixture {
  stack: LocalStack;
  llm: FakeOpenAi;
  tools: HttpDouble;
  env: Record<string, string>;
  config: Config;
  deps: ApiDeps;
  handler: ApiHandler;
  gateway: Gateway;
  /** The dev tenant's key and a second tenant's ("acme"). */
  devKey: string;
  acmeKey: string;
  /** A request through the gateway with fetch; JSON in, JSON out. */
  call(
    method: string,
    path: string,
    options?: CallOptions,
    // biome-ignore lint/suspicious/noExplicitAny: tests read JSON responses field by field
  ): Promise<{ status: number; body: any; headers: Headers }>;
  /** A handler with other settings on the same stack (e.g. a dead Redis or a missing queue). */
  handlerWith(overrides: Record<string, string>): ApiHandler;
  /** Receives (and deletes) the messages now on a queue. */
  drainQueue(queueUrl: string, waitSeconds?: number): Promise<Message[]>;
  close(): Promise<void>;
}

export interface CallOptions {
  body?: unknown;
  rawBody?: string;
  key?: string | null;
  headers?: Record<string, string>;
}

export const quietLogger = () => new Logger({ serviceName: "mova-api-test", logLevel: "SILENT" });

/** `stackOptions`: e.g. a Redis of the test's own behind the bridge (`redisUrl`, `noRedisServer`). */
export async function startApiFixture(
  extraEnv: Record<string, string> = {},
  stackOptions: LocalStackOptions = {},
): Promise<ApiFixture> {
  const stack = await startLocalStack({ memory: true, ...stackOptions });
  const llm = await startFakeOpenAi();
  const tools = await startHttpDouble();
  const devKey = `dev_${randomBytes(12).toString("hex")}`;
  const acmeKey = `acme_${randomBytes(12).toString("hex")}`;
  const env: Record<string, string> = {
    ...stack.env,
    LLM_API_KEY: "sk-test",
    LLM_BASE_URL: llm.baseURL,
    LLM_MAX_RETRIES: "0",
    LLM_MODEL: "fake-model",
    TOOL_ALLOW_HOSTS: `127.0.0.1:${tools.port}`,
    MOVA_DEV_API_KEY: devKey,
    MOVA_API_KEYS: `acme:${sha256Hex(acmeKey)}`,
    LOG_LEVEL: "SILENT",
    ...extraEnv,
  };
  const build = (overrides: Record<string, string>) => {
    const merged = { ...env, ...overrides };
    const config = loadConfig(merged);
    const deps = buildApiDeps(config, {
      env: merged,
      sessionBackend: stack.sessionBackend,
      logger: quietLogger(),
    });
    return { config, deps, handler: createApiHandler(deps) };
  };
  const { config, deps, handler } = build({});
  // GET /executions/{id}/events streams, as `npm run dev` serves it.
  const stream = buildStreamHandler(config, {
    env,
    logger: quietLogger(),
    ...(deps.runEvents ? { runEvents: deps.runEvents } : {}),
  });
  const gateway = await startGateway({
    handler,
    port: 0,
    streaming: [{ path: RUN_EVENTS_PATH, handler: stream }],
  });
  const sqs = createSqsClient(config, { env });

  return {
    stack,
    llm,
    tools,
    env,
    config,
    deps,
    handler,
    gateway,
    devKey,
    acmeKey,
    async call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const key = options.key === undefined ? devKey : options.key;
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let body: string | undefined = options.rawBody;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers["content-type"] = "application/json";
      }
      const response = await fetch(`${gateway.url}${path}`, { method, headers, body });
      const text = await response.text();
      return {
        status: response.status,
        body: text ? JSON.parse(text) : undefined,
        headers: response.headers,
      };
    },
    handlerWith: (overrides) => build(overrides).handler,
    async drainQueue(queueUrl, waitSeconds = 1) {
      const messages: Message[] = [];
      for (;;) {
        const received = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: messages.length === 0 ? waitSeconds : 0,
            MessageAttributeNames: ["All"],
          }),
        );
        const batch = received.Messages ?? [];
        if (batch.length === 0) return messages;
        for (const message of batch) {
          messages.push(message);
          await sqs.send(
            new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
          );
        }
      }
    },
    async close() {
      await gateway.close();
      await Promise.allSettled([llm.close(), tools.close()]);
      await stack.stop();
    },
  };
}

/** An API Gateway HTTP API v2 event, as API Gateway sends it, for invoking the handler directly. */
export function v2Event(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; query?: Record<string, string> } = {},
): APIGatewayProxyEventV2 {
  const rawQueryString = new URLSearchParams(options.query ?? {}).toString();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString,
    headers: {
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...options.headers,
    },
    ...(options.query ? { queryStringParameters: options.query } : {}),
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "api.example.com",
      domainPrefix: "api",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "vitest" },
      requestId: `req-${randomBytes(6).toString("hex")}`,
      routeKey: "$default",
      stage: "$default",
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    ...(options.body === undefined
      ? { isBase64Encoded: false }
      : {
          body: typeof options.body === "string" ? options.body : JSON.stringify(options.body),
          isBase64Encoded: false,
        }),
  };
}

export const lambdaContext = { getRemainingTimeInMillis: () => 29_000 } as unknown as Context;

export async function invoke(handler: ApiHandler, event: APIGatewayProxyEventV2) {
  const result = (await handler(event, lambdaContext)) as APIGatewayProxyStructuredResultV2;
  return { ...result, json: result.body ? JSON.parse(result.body) : undefined };
}

/** A document with a conversation (input steps, a tool call, a prompt), a greeting and a one-shot protocol. */
export function shopDocument(toolsUrl: string) {
  return {
    version: "2.2",
    intents: [
      {
        name: "greeting",
        patterns: ["hello", "привіт"],
        intent_type: "greeting",
        response_template: "Hello {profile.name}!",
      },
      {
        name: "order",
        description: "ordering an item",
        patterns: ["order", "buy"],
        intent_type: "command",
        protocol: "order_flow",
      },
    ],
    protocols: [
      {
        name: "order_flow",
        steps: [
          { id: "ask_item", action: "input", prompt: "Which item would you like?", variable: "item" },
          { id: "ask_quantity", action: "input", prompt: "How many {item}?", variable: "quantity" },
          { id: "check_stock", action: "tool_api", tool_api_id: "stock", output: "stock" },
          {
            id: "confirm",
            action: "prompt",
            prompt: "Confirm {quantity} x {item} ({stock.available} in stock) for {profile.name}",
          },
          { id: "end", action: "end", response_template: "Ordered {quantity} {item}" },
        ],
      },
      {
        name: "echo",
        inputs: ["word"],
        steps: [
          { id: "say", action: "prompt", prompt: "Say {word}" },
          { id: "end", action: "end" },
        ],
      },
      {
        name: "broken",
        steps: [
          { id: "call", action: "tool_api", tool_api_id: "stock", output: "stock" },
          { id: "end", action: "end" },
        ],
      },
    ],
    tools: [{ id: "stock", endpoint: `${toolsUrl}/stock/{item}`, method: "GET" }],
    profiles: [{ user_id: "u1", name: "Olena", language: "uk" }],
  };
}
