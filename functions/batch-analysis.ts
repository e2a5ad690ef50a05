/** The batch analysis: the daily schedule and on-demand runs (see lib/services/batch-analysis.ts). */
import { Metrics } from "@aws-lambda-powertools/metrics";
import { loadConfig } from "../lib/config.ts";
import { createBatchAnalysisHandler } from "../lib/services/analysis-handlers.ts";
import { buildAnalysisDeps } from "../lib/wiring/analysis.ts";

const config = loadConfig();
export const handler = createBatchAnalysisHandler(
  buildAnalysisDeps(config, {
    serviceName: "mova-batch-analysis",
    metrics: new Metrics({ namespace: "Mova", serviceName: "batch-analysis" }),
  }),
);
