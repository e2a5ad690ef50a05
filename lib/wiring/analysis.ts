/**
 * The two analysis functions' wiring (functions/analyze.ts and functions/batch-analysis.ts read
 * the same stores): the history, the patterns and the analysis runs in DynamoDB.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { createDynamoDbClient } from "../adapters/aws-clients.ts";
import { createDynamoAnalysisRunStore } from "../adapters/dynamodb/analysis-run-store.ts";
import { createDynamoHistoryStore } from "../adapters/dynamodb/history-store.ts";
import { createDynamoPatternStore } from "../adapters/dynamodb/pattern-store.ts";
import { createDynamoSpendCounter } from "../adapters/dynamodb/budget-counter.ts";
import { createDynamoRoutingStore } from "../adapters/dynamodb/routing-store.ts";
import { createDynamoScoreStore } from "../adapters/dynamodb/score-store.ts";
import { createDynamoDocumentStore } from "../adapters/dynamodb/document-store.ts";
import { createLlm } from "../adapters/llm/create-llm.ts";
import { createDocumentLoader } from "../services/document-loader.ts";
import type { Config } from "../config.ts";
import type { AnalysisDeps } from "../services/analysis-handlers.ts";

export function buildAnalysisDeps(
  config: Config,
  options: { env?: NodeJS.ProcessEnv; logger?: Logger; metrics?: Metrics; serviceName?: string } = {},
): AnalysisDeps {
  const dynamo = createDynamoDbClient(config, { env: options.env ?? process.env });
  const patterns = createDynamoPatternStore({ client: dynamo, table: config.PATTERNS_TABLE });
  const scores = createDynamoScoreStore({ client: dynamo, table: config.PATTERNS_TABLE });
  return {
    config,
    history: createDynamoHistoryStore({
      client: dynamo,
      table: config.EXECUTIONS_TABLE,
      retentionDays: config.HISTORY_RETENTION_DAYS,
      outputMaxBytes: config.HISTORY_OUTPUT_MAX_BYTES,
    }),
    patterns,
    runs: createDynamoAnalysisRunStore({ client: dynamo, table: config.PATTERNS_TABLE }),
    logger:
      options.logger ??
      new Logger({
        serviceName: options.serviceName ?? "mova-analysis",
        logLevel: config.LOG_LEVEL as "INFO",
      }),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    budget: {
      spend: createDynamoSpendCounter({ client: dynamo, table: config.PATTERNS_TABLE }),
      prices: config.llmPrices,
      budgets: config.TENANT_MONTHLY_BUDGETS,
    },
    rollback: {
      routing: createDynamoRoutingStore({ client: dynamo, table: config.DOCUMENTS_TABLE }),
      patterns,
      scores,
      prices: config.llmPrices,
      now: Date.now,
    },
    evaluators: {
      llm: createLlm(config),
      loader: createDocumentLoader(
        createDynamoDocumentStore({ client: dynamo, table: config.DOCUMENTS_TABLE }),
      ),
      scores,
      now: Date.now,
    },
  };
}
