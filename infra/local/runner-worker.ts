/**
 * The local stand-in for the runner function's SQS event source: the stack's one SQS poller
 * (sqs-poller.ts) on the runs queue, handing each batch to the real runner handler. A message
 * whose run another runner holds is retried after a few seconds.
 */
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import { startQueuePoller } from "./sqs-poller.ts";
import type { BackgroundWorker } from "./workers.ts";

/** The local runner's invocation time: the deployed function's timeout. */
const LOCAL_INVOCATION_MS = 900_000;

export const runnerPollerWorker: BackgroundWorker = {
  name: "runner-poller",
  describe: (context) => `SQS poller: ${context.env.RUNS_QUEUE_URL?.split("/").at(-1)} → runner handler`,
  async start(context) {
    const queueUrl = context.env.RUNS_QUEUE_URL;
    if (!queueUrl) throw new Error("the local stack has no RUNS_QUEUE_URL");
    const sqs = createSqsClient(context.config, { env: context.env, requestTimeoutMs: 30_000 });
    const handler = buildRunnerHandler(context.config, { env: context.env, logger: context.logger });
    const poller = startQueuePoller({
      sqs,
      region: context.config.AWS_REGION,
      queueUrls: [queueUrl],
      handler: (event) => {
        const started = Date.now();
        return handler(event, {
          awsRequestId: `local-${started.toString(36)}`,
          getRemainingTimeInMillis: () => LOCAL_INVOCATION_MS - (Date.now() - started),
        });
      },
      waitSeconds: 5,
      retryDelaySeconds: 5,
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
