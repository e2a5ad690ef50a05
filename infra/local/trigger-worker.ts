/**
 * The local stand-in for the trigger function's SQS event source: the stack's one SQS poller
 * (sqs-poller.ts) on the trigger queue, handing each batch to the real trigger handler. Failed
 * messages wait out the queue's visibility timeout and, after its redrive count, move to the
 * dead-letter queue, as with Lambda's event source mapping.
 */
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { buildTriggerHandler } from "../../lib/wiring/trigger.ts";
import { startQueuePoller } from "./sqs-poller.ts";
import type { BackgroundWorker } from "./workers.ts";

export const triggerPollerWorker: BackgroundWorker = {
  name: "trigger-poller",
  describe: (context) => `SQS poller: ${context.env.TRIGGER_QUEUE_URL?.split("/").at(-1)} → trigger handler`,
  async start(context) {
    const queueUrl = context.env.TRIGGER_QUEUE_URL;
    if (!queueUrl) throw new Error("the local stack has no TRIGGER_QUEUE_URL");
    // Long polls wait up to waitSeconds: the request timeout must outlast them.
    const sqs = createSqsClient(context.config, { env: context.env, requestTimeoutMs: 30_000 });
    const poller = startQueuePoller({
      sqs,
      region: context.config.AWS_REGION,
      queueUrls: [queueUrl],
      handler: buildTriggerHandler(context.config, { env: context.env, logger: context.logger }),
      waitSeconds: 5,
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
