/** The analysis function: SQS execution events → per-protocol day aggregates (see lib/services/analysis-handlers.ts). */
import { Metrics } from "@aws-lambda-powertools/metrics";
import { loadConfig } from "../lib/config.ts";
import { createAnalyzeHandler } from "../lib/services/analysis-handlers.ts";
import { buildAnalysisDeps } from "../lib/wiring/analysis.ts";

const config = loadConfig();
export const handler = createAnalyzeHandler(
  buildAnalysisDeps(config, {
    serviceName: "mova-analyze",
    metrics: new Metrics({ namespace: "Mova", serviceName: "analyze" }),
  }),
);
