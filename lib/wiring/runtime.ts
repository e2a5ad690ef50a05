/**
 * The dependencies every function that runs protocols shares, built from the configuration:
 * DynamoDB (documents, history, idempotency claims), the SQS publisher of execution events,
 * the LLM, the HTTP tools, the secrets and the clock. The API adds its session store on top
 * (lib/wiring/api.ts); the event trigger uses these as they are. One builder, so the
 * API, the trigger, the local stack and the tests all run the same wiring.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { systemClock } from "../adapters/clock.ts";
import { createToolsFromConfig } from "../adapters/http/tools.ts";
import { createLlm } from "../adapters/llm/create-llm.ts";
import type { Config } from "../config.ts";
import { createDynamoDbClient, createSqsClient, createSsmClient } from "../adapters/aws-clients.ts";
import { createLocalTenantSecrets } from "../adapters/secrets/local-secrets.ts";
import { createSsmTenantSecrets } from "../adapters/secrets/ssm-secrets.ts";
import { createDynamoDocumentStore } from "../adapters/dynamodb/document-store.ts";
import { createDynamoHistoryStore } from "../adapters/dynamodb/history-store.ts";
import { createSqsPublisher } from "../adapters/sqs/publisher.ts";
import { createDynamoIdempotency } from "../adapters/dynamodb/idempotency.ts";
import type { RuntimeDeps } from "../services/runtime-deps.ts";
import type { RunCheckpointStore, RunEventStream } from "../ports.ts";
import { StoreUnavailableError } from "../errors.ts";
import { createSqsRunQueue } from "../adapters/sqs/run-queue.ts";
import { createRedisCheckpointStore } from "../adapters/redis/checkpoint-store.ts";
import { createMemoryCheckpointStore } from "../adapters/memory-checkpoint-store.ts";
import { createRedisFromConfig } from "../adapters/redis/session-store.ts";
import { createRedisRunControlStore } from "../adapters/redis/run-control-store.ts";
import { createMemoryRunControlStore } from "../adapters/memory-run-control-store.ts";
import type { RunControlStore } from "../ports.ts";
import { createRedisRunEventStream } from "../adapters/redis/run-event-stream.ts";
import { createMemoryRunEventStream } from "../adapters/memory-run-event-stream.ts";
import { createOtlpRunTraces } from "../adapters/otel/otlp-run-traces.ts";

export interface BuildRuntimeDepsOptions {
  /** Where endpoints, credentials and `MOVA_SECRET_*` are read; the process's by default. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** The logger's service name when no logger is given. */
  serviceName?: string;
  /**
   * `memory` only for a local stack without Redis: the checkpoints then live in this process
   * (the runner of another process cannot see them).
   */
  checkpointBackend?: "redis" | "memory";
}

export function buildRuntimeDeps(config: Config, options: BuildRuntimeDepsOptions = {}): RuntimeDeps {
  const env = options.env ?? process.env;
  const logger =
    options.logger ??
    new Logger({ serviceName: options.serviceName ?? "mova", logLevel: config.LOG_LEVEL as "INFO" });
  const dynamo = createDynamoDbClient(config, { env });
  const sqs = createSqsClient(config, { env });
  // Runs export OpenTelemetry spans only where an OTLP endpoint is configured.
  const otlpEndpoint = config.OTLP_ENDPOINT ?? config.OTEL_EXPORTER_OTLP_ENDPOINT;
  return {
    ...(otlpEndpoint
      ? {
          runTraces: createOtlpRunTraces({
            endpoint: otlpEndpoint,
            serviceName: options.serviceName ?? "mova",
            flushTimeoutMs: config.OTLP_FLUSH_TIMEOUT_MS,
            logger,
          }),
        }
      : {}),
    documents: createDynamoDocumentStore({ client: dynamo, table: config.DOCUMENTS_TABLE }),
    history: createDynamoHistoryStore({
      client: dynamo,
      table: config.EXECUTIONS_TABLE,
      retentionDays: config.HISTORY_RETENTION_DAYS,
      outputMaxBytes: config.HISTORY_OUTPUT_MAX_BYTES,
    }),
    publisher: createSqsPublisher({
      client: sqs,
      queueUrl: config.ANALYSIS_QUEUE_URL ?? "",
      priorityQueueUrl: config.ANALYSIS_PRIORITY_QUEUE_URL,
    }),
    checkpoints:
      options.checkpointBackend === "memory"
        ? createMemoryCheckpointStore({ maxStateBytes: config.MAX_RUN_STATE_BYTES })
        : redisCheckpoints(config),
    runQueue: createSqsRunQueue({ client: sqs, queueUrl: config.RUNS_QUEUE_URL }),
    runControl:
      options.checkpointBackend === "memory" ? createMemoryRunControlStore() : redisRunControl(config),
    callbacks: { secret: config.CALLBACK_SECRET, baseUrl: config.PUBLIC_API_URL },
    runStaleMs: config.RUN_STALE_MS,
    runEvents:
      options.checkpointBackend === "memory"
        ? createMemoryRunEventStream({
            maxLen: config.RUN_EVENTS_MAX_LEN,
            ttlSeconds: config.RUN_EVENTS_TTL_SECONDS,
          })
        : redisRunEvents(config),
    idempotency: createDynamoIdempotency({
      client: dynamo,
      tableName: config.EXECUTIONS_TABLE,
      // A claim outlives its run's deadline: a holder still running keeps it, a dead one frees it.
      lockMs: config.RUN_DEADLINE_MS + 30_000,
    }),
    llm: createLlm(config),
    tools: createToolsFromConfig(config),
    secrets: config.SECRETS_SSM_PATH
      ? createSsmTenantSecrets({
          client: createSsmClient(config, { env }),
          basePath: config.SECRETS_SSM_PATH,
          maxAgeSeconds: config.SECRETS_MAX_AGE_SECONDS,
        })
      : createLocalTenantSecrets({
          env,
          ...(config.MOVA_SECRETS_DIR ? { directory: config.MOVA_SECRETS_DIR } : {}),
        }),
    clock: systemClock,
    logger,
  };
}

/**
 * A Redis-backed store made on its first use, not at build: without both Upstash settings the
 * call fails with `code` (a StoreUnavailableError) and the function still builds.
 */
function onFirstUse<T>(
  config: Config,
  code: string,
  make: (redis: ReturnType<typeof createRedisFromConfig>) => T,
): () => T {
  let made: T | undefined;
  return () => {
    if (made !== undefined) return made;
    if (!config.UPSTASH_REDIS_REST_URL || !config.UPSTASH_REDIS_REST_TOKEN)
      throw new StoreUnavailableError(
        code,
        "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must both be set",
      );
    made = make(createRedisFromConfig(config));
    return made;
  };
}

/**
 * The Redis checkpoint store, made on first use: a function without Redis settings (one that
 * never runs protocols durably) builds its deps without them, and a call then fails with
 * `run_store_unavailable` instead of the build.
 */
function redisCheckpoints(config: Config): RunCheckpointStore {
  const get = onFirstUse(config, "run_store_unavailable", (redis) =>
    createRedisCheckpointStore({ redis, maxStateBytes: config.MAX_RUN_STATE_BYTES }),
  );
  return {
    create: async (...args) => get().create(...args),
    get: async (...args) => get().get(...args),
    write: async (...args) => get().write(...args),
    acquireLease: async (...args) => get().acquireLease(...args),
    renewLease: async (...args) => get().renewLease(...args),
    releaseLease: async (...args) => get().releaseLease(...args),
  };
}

/** The Redis run control store, made on first use (as the checkpoint store above). */
function redisRunControl(config: Config): RunControlStore {
  const get = onFirstUse(config, "run_store_unavailable", (redis) => createRedisRunControlStore({ redis }));
  return {
    schedule: async (...args) => get().schedule(...args),
    due: async (...args) => get().due(...args),
    unschedule: async (...args) => get().unschedule(...args),
    requestCancel: async (...args) => get().requestCancel(...args),
    cancelRequested: async (...args) => get().cancelRequested(...args),
    claimOnce: async (...args) => get().claimOnce(...args),
    unclaim: async (...args) => get().unclaim(...args),
  };
}

/**
 * The Redis run event stream, made on first use (as the checkpoint store): without Redis
 * settings an append fails with `run_events_unavailable`, which a run counts and goes on.
 */
export function redisRunEvents(config: Config): RunEventStream {
  const get = onFirstUse(config, "run_events_unavailable", (redis) =>
    createRedisRunEventStream({
      redis,
      maxLen: config.RUN_EVENTS_MAX_LEN,
      ttlSeconds: config.RUN_EVENTS_TTL_SECONDS,
    }),
  );
  return {
    append: async (...args) => get().append(...args),
    read: async (...args) => get().read(...args),
  };
}
