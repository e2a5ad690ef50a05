/**
 * The local stand-ins for the analysis functions' event sources (started by `npm run dev`
 * from its list of workers):
 * - the analysis poller: receives from the priority queue first and drains it before it
 *   takes from the ordinary queue, hands each batch to the real analyze handler as a real
 *   SQS event, deletes what the handler did not report as failed, and makes the failed
 *   messages visible again after `retryDelaySeconds` (Lambda leaves them for the queue's
 *   VisibilityTimeout, 360 s, too long to watch locally). fauxqs honours the redrive
 *   policy: on the receive after the fifth, a message moves to the dead-letter queue,
 *   as in SQS. Deployed, Lambda polls both queues concurrently (two event source mappings;
 *   the ordinary one capped at 5 concurrent batches, the priority one not), which is what
 *   keeps failures ahead of a backlog there; it is not a strict order.
 * - the run poller: on-demand runs from POST /analysis/runs → the batch handler.
 * - the schedule: every ANALYSIS_SCHEDULE_INTERVAL_MS (default daily) the batch handler with a
 *   scheduled event, as EventBridge would.
 */
import { buildAnalysisDeps } from "../../lib/wiring/analysis.ts";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import {
  type AnalysisDeps,
  createAnalyzeHandler,
  createBatchAnalysisHandler,
} from "../../lib/services/analysis-handlers.ts";
import { startQueuePoller } from "./sqs-poller.ts";
import type { BackgroundWorker, WorkerContext } from "./workers.ts";

function depsFor(context: WorkerContext): AnalysisDeps {
  return buildAnalysisDeps(context.config, { env: context.env, logger: context.logger });
}

export const analysisPollerWorker: BackgroundWorker = {
  name: "analysis-poller",
  describe: (context) =>
    `SQS poller: ${queueName(context.env.ANALYSIS_PRIORITY_QUEUE_URL)} (first), ${queueName(context.env.ANALYSIS_QUEUE_URL)} → analyze handler`,
  async start(context) {
    const queueUrls = [context.env.ANALYSIS_PRIORITY_QUEUE_URL, context.env.ANALYSIS_QUEUE_URL].filter(
      (url): url is string => Boolean(url),
    );
    const sqs = createSqsClient(context.config, { env: context.env, requestTimeoutMs: 30_000 });
    const poller = startQueuePoller({
      sqs,
      region: context.config.AWS_REGION,
      queueUrls,
      handler: createAnalyzeHandler(depsFor(context)),
      // Lambda leaves a failed message for the queue's visibility timeout (360 s), too long to watch locally.
      retryDelaySeconds: 2,
      logger: context.logger,
    });
    return {
      async stop() {
        await poller.stop();
        sqs.destroy();
      },
    };
  },
};

export const analysisRunWorker: BackgroundWorker = {
  name: "analysis-runs",
  describe: (context) => {
    const hours = context.config.ANALYSIS_SCHEDULE_INTERVAL_MS / 3_600_000;
    return `batch analysis: runs from ${queueName(context.env.ANALYSIS_RUN_QUEUE_URL)}, schedule every ${hours} h (ANALYSIS_SCHEDULE_INTERVAL_MS)`;
  },
  async start(context) {
    const handler = createBatchAnalysisHandler(depsFor(context));
    const sqs = createSqsClient(context.config, { env: context.env, requestTimeoutMs: 30_000 });
    const runUrl = context.env.ANALYSIS_RUN_QUEUE_URL;
    const poller = runUrl
      ? startQueuePoller({
          sqs,
          region: context.config.AWS_REGION,
          queueUrls: [runUrl],
          handler,
          maxMessages: 1,
          retryDelaySeconds: 2,
          logger: context.logger,
        })
      : undefined;
    let running: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      running = running
        .then(() =>
          handler({ source: "aws.events", "detail-type": "Scheduled Event", time: new Date().toISOString() }),
        )
        .catch((error: unknown) =>
          context.logger.error("scheduled analysis failed", { error: error as Error }),
        );
    }, context.config.ANALYSIS_SCHEDULE_INTERVAL_MS);
    timer.unref();
    return {
      async stop() {
        clearInterval(timer);
        await poller?.stop();
        await running;
        sqs.destroy();
      },
    };
  },
};

function queueName(url: string | undefined): string {
  return url?.split("/").at(-1) ?? "(not configured)";
}
