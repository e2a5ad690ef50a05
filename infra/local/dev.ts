/**
 * `npm run dev`: the whole system on this machine with no settings. Starts the local stack
 * (dynalite with data under .mova/, or in memory with `--memory`; fauxqs; the Upstash bridge
 * in front of Redis), runs the real API handler behind the local gateway on
 * http://localhost:${PORT:-3000}, starts the background workers of its list, prints the
 * endpoints and the API key, and stops everything on SIGINT/SIGTERM.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Logger } from "@aws-lambda-powertools/logger";
import { buildApiDeps } from "../../lib/wiring/api.ts";
import { createApiHandler } from "../../lib/http/handler.ts";
import { RUN_EVENTS_PATH } from "../../lib/http/run-events-stream.ts";
import { buildStreamHandler } from "../../lib/wiring/stream.ts";
import { loadConfig } from "../../lib/config.ts";
import { removeEndpointsFile, writeEndpointsFile } from "./endpoints-file.ts";
import { startGateway } from "./gateway.ts";
import { startLocalStack } from "./stack.ts";
import { analysisPollerWorker, analysisRunWorker } from "./analysis-workers.ts";
import { runnerPollerWorker } from "./runner-worker.ts";
import { sweepWorker } from "./sweep-worker.ts";
import { triggerPollerWorker } from "./trigger-worker.ts";
import { lazyDashboardBundle } from "../../scripts/dashboard-bundle.ts";
import type { BackgroundWorker, RunningWorker } from "./workers.ts";

/** What Lambda's event sources and the schedule do in AWS, started in this order once the API is up. */
const WORKERS: readonly BackgroundWorker[] = [
  analysisPollerWorker,
  analysisRunWorker,
  triggerPollerWorker,
  runnerPollerWorker,
  sweepWorker,
];

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const memory = args.includes("--memory");
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`PORT must be a port number, not "${process.env.PORT}"`);

  const stack = await startLocalStack({ memory, dataDir: path.join(ROOT, ".mova", "dynamodb") });
  const running: RunningWorker[] = [];
  let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
  let stopping = false;

  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping…\n`);
    for (const worker of running.reverse()) await worker.stop().catch(() => undefined);
    await gateway?.close().catch(() => undefined);
    await stack.stop().catch(() => undefined);
    removeEndpointsFile(ROOT);
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));

  try {
    const apiKey = process.env.MOVA_DEV_API_KEY || `dev_${randomBytes(18).toString("base64url")}`;
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...stack.env,
      MOVA_DEV_API_KEY: apiKey,
      // Signed callback URLs ({callback.EVENT}) point at this gateway; the key lives as long as the stack.
      CALLBACK_SECRET: process.env.CALLBACK_SECRET || randomBytes(32).toString("base64url"),
      PUBLIC_API_URL: process.env.PUBLIC_API_URL || `http://localhost:${port}`,
    };
    const config = loadConfig(env);
    const logger = new Logger({
      serviceName: "mova-api",
      logLevel: (process.env.LOG_LEVEL ?? "WARN") as "WARN",
    });
    const deps = buildApiDeps(config, {
      env,
      sessionBackend: stack.sessionBackend,
      logger,
      dashboardScript: lazyDashboardBundle(ROOT),
    });
    // GET /executions/{id}/events streams, as the stream function's URL does when deployed.
    const stream = buildStreamHandler(config, {
      env,
      logger,
      ...(deps.runEvents ? { runEvents: deps.runEvents } : {}),
    });
    gateway = await startGateway({
      handler: createApiHandler(deps),
      port,
      host: "127.0.0.1",
      streaming: [{ path: RUN_EVENTS_PATH, handler: stream }],
    });

    const lines = [
      "MOVA Serverless — local stack",
      `  API:         ${gateway.url}   (OpenAPI: ${gateway.url}/openapi.json)`,
      `  Live events: ${gateway.url}/executions/{id}/events   (server-sent events: curl -N)`,
      `  API key:     ${apiKey}   (tenant "dev"; send as Authorization: Bearer <key>)`,
      `  Dashboard:   ${gateway.url}/dashboard#key=${apiKey}`,
      `  DynamoDB:    ${stack.env.AWS_ENDPOINT_URL_DYNAMODB}${memory ? " (in memory)" : " (data under .mova/dynamodb)"}`,
      `  SQS:         ${stack.env.AWS_ENDPOINT_URL_SQS}   analysis queue: ${stack.env.ANALYSIS_QUEUE_URL}`,
      `  Redis REST:  ${stack.env.UPSTASH_REDIS_REST_URL ?? "(none: sessions kept in process memory)"}`,
      `  LLM:         ${deps.llm.offline ? "offline model (set LLM_API_KEY to use a real one)" : config.LLM_MODEL}`,
    ];
    const context = { env: stack.env, config, logger };
    for (const worker of WORKERS) {
      running.push(await worker.start(context));
      lines.push(`  Worker:      ${worker.describe?.(context) ?? worker.name}`);
    }
    lines.push(`  Endpoints:   ${writeEndpointsFile(ROOT, stack.env, gateway.url)} (read by mova analyze)`);
    for (const warning of stack.warnings) lines.push(`  warning: ${warning}`);
    lines.push("Press Ctrl+C to stop.");
    process.stdout.write(`${lines.join("\n")}\n`);
  } catch (error) {
    await stack.stop().catch(() => undefined);
    throw error;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `npm run dev failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
