/**
 * Builds the API's dependencies from the configuration: the runtime's shared wiring
 * (lib/wiring/runtime.ts: DynamoDB, SQS, the OpenAI-compatible LLM, HTTP tools) plus the
 * session store (Upstash Redis). Used by the Lambda entry, the local stack and the tests
 * alike, so all three run the same wiring.
 */
import { readFile } from "node:fs/promises";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Config } from "../config.ts";
import { MovaError } from "../errors.ts";
import { createDynamoScoreStore } from "../adapters/dynamodb/score-store.ts";
import { createDynamoRoutingStore } from "../adapters/dynamodb/routing-store.ts";
import { createMemorySessionStore } from "../adapters/memory-session-store.ts";
import { createRedisFromConfig, createRedisSessionStore } from "../adapters/redis/session-store.ts";
import { createDynamoDbClient, createSqsClient } from "../adapters/aws-clients.ts";
import { createDynamoAnalysisRunStore } from "../adapters/dynamodb/analysis-run-store.ts";
import { createDynamoPatternStore } from "../adapters/dynamodb/pattern-store.ts";
import { requestAnalysisRun } from "../services/batch-analysis.ts";
import { buildRuntimeDeps } from "./runtime.ts";
import type { ApiDeps } from "../http/deps.ts";
import type { SessionStore } from "../ports.ts";

interface BuildApiDepsOptions {
  /** Where endpoints, credentials and `MOVA_SECRET_*` are read; the process's by default. */
  env?: NodeJS.ProcessEnv;
  /** `memory` only for the local stack when no Redis could be had. */
  sessionBackend?: "redis" | "memory";
  logger?: Logger;
  /** The dashboard's script; by default the `dashboard.js` that `npm run build` writes beside the API's bundle. */
  dashboardScript?: () => Promise<string>;
}

export function buildApiDeps(config: Config, options: BuildApiDepsOptions = {}): ApiDeps {
  const logger =
    options.logger ?? new Logger({ serviceName: "mova-api", logLevel: config.LOG_LEVEL as "INFO" });
  const sessions =
    options.sessionBackend === "memory"
      ? createMemorySessionStore({ ttlSeconds: config.SESSION_TTL_SECONDS })
      : lazySessionStore(() =>
          createRedisSessionStore({
            redis: createRedisFromConfig(config),
            ttlSeconds: config.SESSION_TTL_SECONDS,
          }),
        );
  const metrics = new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? "Mova",
    serviceName: "mova-api",
  });
  return {
    config,
    // An EMF line per 5xx answer, handled ones included (a 503 is no Lambda error): the
    // HandledServerErrors alarm of infra/resources.yml watches it.
    onServerError: (code) => {
      metrics.addMetric("HandledServerErrors", MetricUnit.Count, 1);
      metrics.addMetadata("code", code);
      metrics.publishStoredMetrics();
    },
    ...buildRuntimeDeps(config, {
      env: options.env,
      logger,
      serviceName: "mova-api",
      ...(options.sessionBackend === "memory" ? { checkpointBackend: "memory" as const } : {}),
    }),
    sessions,
    routing: createDynamoRoutingStore({
      client: createDynamoDbClient(config, { env: options.env ?? process.env }),
      table: config.DOCUMENTS_TABLE,
    }),
    analysis: buildApiAnalysisDeps(config, options.env ?? process.env),
    dashboardScript: options.dashboardScript ?? builtDashboardScript(),
  };
}

/**
 * Reads dist/api/dashboard.js (beside the bundle's index.mjs) once, on the first request for
 * it; a missing file is a 404 that says how to build it, and is read again next time.
 */
function builtDashboardScript(): () => Promise<string> {
  let script: Promise<string> | undefined;
  return () => {
    script ??= readFile(new URL("./dashboard.js", import.meta.url), "utf8").catch((error: unknown) => {
      script = undefined;
      if ((error as NodeJS.ErrnoException).code === "ENOENT")
        throw new MovaError("not_found", "the dashboard's script is not built (npm run build)");
      throw error;
    });
    return script;
  };
}

/**
 * The Redis session store, made on first use: without Upstash settings the API still starts
 * (`/health`, `/ready`, documents and executions answer), and a session call fails with
 * `session_store_unavailable` (503) instead of every request throwing at build time.
 */
function lazySessionStore(make: () => SessionStore): SessionStore {
  let store: SessionStore | undefined;
  const get = (): SessionStore => {
    store ??= make();
    return store;
  };
  return {
    create: async (...args) => get().create(...args),
    get: async (...args) => get().get(...args),
    update: async (...args) => get().update(...args),
    delete: async (...args) => get().delete(...args),
  };
}

/** The patterns and analysis-run routes' stores (the patterns table) and the run queue. */
function buildApiAnalysisDeps(config: Config, env: NodeJS.ProcessEnv): NonNullable<ApiDeps["analysis"]> {
  const dynamo = createDynamoDbClient(config, { env });
  const sqs = createSqsClient(config, { env });
  const runs = createDynamoAnalysisRunStore({ client: dynamo, table: config.PATTERNS_TABLE });
  return {
    patterns: createDynamoPatternStore({ client: dynamo, table: config.PATTERNS_TABLE }),
    runs,
    requestRun: (tenant, request) =>
      requestAnalysisRun(tenant, request, { runs, sqs, queueUrl: config.ANALYSIS_RUN_QUEUE_URL }),
    defaultRunDays: config.ANALYSIS_WINDOW_DAYS,
    scores: createDynamoScoreStore({ client: dynamo, table: config.PATTERNS_TABLE }),
    prices: config.llmPrices,
  };
}
