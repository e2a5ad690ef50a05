/**
 * Builds the API's dependencies from the configuration: the real adapters (Upstash Redis,
 * DynamoDB, SQS, the OpenAI-compatible LLM, HTTP tools). Used by the Lambda entry, the
 * local stack and the tests alike, so all three run the same wiring.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { systemClock } from "../adapters/clock.ts";
import { createToolsFromConfig } from "../adapters/http-tools.ts";
import { createLlm } from "../adapters/llm.ts";
import { type Config, envSecrets } from "../config.ts";
import { createDynamoDbClient, createSqsClient } from "../runtime/aws-clients.ts";
import { createDynamoDocumentStore } from "../runtime/dynamo-document-store.ts";
import { createDynamoHistoryStore } from "../runtime/dynamo-history-store.ts";
import { createMemorySessionStore } from "../runtime/memory-session-store.ts";
import { createRedisFromConfig, createRedisSessionStore } from "../runtime/redis-session-store.ts";
import { createSqsPublisher } from "../runtime/sqs-publisher.ts";
import { createDynamoIdempotencyStore } from "../service/idempotency-store.ts";
import type { ApiDeps } from "./deps.ts";

export interface BuildApiDepsOptions {
  /** Where endpoints, credentials and `MOVA_SECRET_*` are read; the process's by default. */
  env?: NodeJS.ProcessEnv;
  /** `memory` only for the local stack when no Redis could be had. */
  sessionBackend?: "redis" | "memory";
  logger?: Logger;
}

export function buildApiDeps(config: Config, options: BuildApiDepsOptions = {}): ApiDeps {
  const env = options.env ?? process.env;
  const logger =
    options.logger ?? new Logger({ serviceName: "mova-api", logLevel: config.LOG_LEVEL as "INFO" });
  const dynamo = createDynamoDbClient(config, { env });
  const sqs = createSqsClient(config, { env });
  const sessions =
    options.sessionBackend === "memory"
      ? createMemorySessionStore({ ttlSeconds: config.SESSION_TTL_SECONDS })
      : createRedisSessionStore({
          redis: createRedisFromConfig(config),
          ttlSeconds: config.SESSION_TTL_SECONDS,
        });
  return {
    config,
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
    idempotency: createDynamoIdempotencyStore({ client: dynamo, tableName: config.EXECUTIONS_TABLE }),
    sessions,
    llm: createLlm(config),
    tools: createToolsFromConfig(config),
    secrets: envSecrets(env),
    clock: systemClock,
    logger,
  };
}
