/**
 * The runs queue (RUNS_QUEUE_URL): one SQS message `{ tenant, executionId }` per hand-over of
 * a run to the runner (functions/runner). The message names the run only: its state is the
 * checkpoint in Redis, so a message sent twice or redelivered advances nothing twice (the
 * runner's lease and the checkpoint's version see to that).
 */
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { StoreUnavailableError } from "../../errors.ts";
import type { RunMessage, RunQueue } from "../../ports.ts";

interface SqsRunQueueOptions {
  client: SQSClient;
  /** RUNS_QUEUE_URL; absent: every enqueue fails with `run_queue_unavailable`. */
  queueUrl: string | undefined;
}

export function createSqsRunQueue(options: SqsRunQueueOptions): RunQueue {
  return {
    async enqueue(message: RunMessage, enqueueOptions = {}) {
      if (!options.queueUrl)
        throw new StoreUnavailableError("run_queue_unavailable", "RUNS_QUEUE_URL is not set");
      const delay = Math.max(0, Math.min(900, Math.floor(enqueueOptions.delaySeconds ?? 0)));
      try {
        await options.client.send(
          new SendMessageCommand({
            QueueUrl: options.queueUrl,
            MessageBody: JSON.stringify({ tenant: message.tenant, executionId: message.executionId }),
            MessageAttributes: { tenant: { DataType: "String", StringValue: message.tenant } },
            ...(delay > 0 ? { DelaySeconds: delay } : {}),
          }),
        );
      } catch (error) {
        throw new StoreUnavailableError("run_queue_unavailable", "the runs queue could not be reached", {
          cause: error,
        });
      }
    },
  };
}
