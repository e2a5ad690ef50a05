/**
 * The stream function's wiring (GET /executions/{id}/events): the history (DynamoDB, to find
 * the tenant's run) and the runs' event streams (Redis), the API keys, the SSE handler.
 * functions/stream.ts and the local gateway call the same handler.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { systemClock } from "../adapters/clock.ts";
import { createDynamoDbClient } from "../adapters/aws-clients.ts";
import { createDynamoHistoryStore } from "../adapters/dynamodb/history-store.ts";
import type { Config } from "../config.ts";
import { createRunEventsHandler, type StreamingHandler } from "../http/run-events-stream.ts";
import type { RunEventStream } from "../ports.ts";
import { redisRunEvents } from "./runtime.ts";

export interface BuildStreamHandlerOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** The API's own stream (a local stack without Redis keeps events in its process). */
  runEvents?: RunEventStream;
}

export function buildStreamHandler(
  config: Config,
  options: BuildStreamHandlerOptions = {},
): StreamingHandler {
  const dynamo = createDynamoDbClient(config, { env: options.env ?? process.env });
  return createRunEventsHandler({
    history: createDynamoHistoryStore({
      client: dynamo,
      table: config.EXECUTIONS_TABLE,
      retentionDays: config.HISTORY_RETENTION_DAYS,
      outputMaxBytes: config.HISTORY_OUTPUT_MAX_BYTES,
    }),
    runEvents: options.runEvents ?? redisRunEvents(config),
    clock: systemClock,
    logger:
      options.logger ?? new Logger({ serviceName: "mova-stream", logLevel: config.LOG_LEVEL as "INFO" }),
    config,
  });
}
