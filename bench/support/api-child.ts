/**
 * The request-path benchmark's API process: the real API handler behind the local gateway,
 * talking to the local stack of stack-child.ts (another process), twice over: one gateway
 * with the deployed wiring (history write and SQS publish overlapping) and one whose deps
 * differ only in a publisher that does nothing, built for this comparison alone (the API
 * deps offer no switch to turn publishing off). It stores the benchmark document, then sends
 * the URLs and the API key to the parent over IPC.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { startGateway } from "../../infra/local/gateway.ts";
import { buildApiDeps } from "../../lib/wiring/api.ts";
import { createApiHandler } from "../../lib/http/handler.ts";
import { loadConfig } from "../../lib/config.ts";
import type { EventPublisher } from "../../lib/ports.ts";

const llmBaseURL = process.env.BENCH_LLM_BASE_URL;
if (!llmBaseURL) throw new Error("BENCH_LLM_BASE_URL is not set");
const stackEnv = JSON.parse(process.env.BENCH_STACK_ENV ?? "{}") as Record<string, string>;
const sessionBackend = (process.env.BENCH_SESSION_BACKEND ?? "memory") as "redis" | "memory";
const apiKey = "bench_request_path_key";

const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  ...stackEnv,
  MOVA_DEV_API_KEY: apiKey,
  LLM_API_KEY: "bench-key",
  LLM_BASE_URL: llmBaseURL,
  LLM_MODEL: "bench-model",
  LLM_MAX_RETRIES: "0",
};
const config = loadConfig(env);
const logger = new Logger({ serviceName: "mova-api", logLevel: "ERROR" });
const deps = buildApiDeps(config, { env, sessionBackend, logger });
const noPublish: EventPublisher = { publishExecution: async () => undefined };
const withPublish = await startGateway({ handler: createApiHandler(deps), port: 0, host: "127.0.0.1" });
const withoutPublish = await startGateway({
  handler: createApiHandler({ ...deps, publisher: noPublish }),
  port: 0,
  host: "127.0.0.1",
});

const document = {
  version: "2.2",
  protocols: [
    {
      name: "answer",
      steps: [
        { id: "reply", action: "prompt", prompt: "Answer briefly: {question}", output: "answer" },
        { id: "done", action: "end", response_template: "{answer}" },
      ],
    },
  ],
};
const stored = await fetch(`${withPublish.url}/documents/bench`, {
  method: "PUT",
  headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
  body: JSON.stringify(document),
});
if (!stored.ok) throw new Error(`PUT /documents/bench answered ${stored.status}: ${await stored.text()}`);

let closing = false;
const close = async () => {
  if (closing) return;
  closing = true;
  await withPublish.close().catch(() => undefined);
  await withoutPublish.close().catch(() => undefined);
  process.exit(0);
};
process.on("message", (message) => {
  if (message === "close") void close();
});
process.on("disconnect", () => void close());
process.send?.({
  withPublishURL: withPublish.url,
  withoutPublishURL: withoutPublish.url,
  apiKey,
});
