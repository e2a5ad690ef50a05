/**
 * The local stand-in for the trigger function's SQS event source: long-polls the trigger
 * queue, hands each batch to the real trigger handler as a real SQS event, and deletes the
 * messages the handler did not report as failed. Failed ones become visible again after the
 * queue's visibility timeout and, after its redrive count, move to the dead-letter queue,
 * as Lambda's event source mapping does. Registered in `npm run dev` by importing this module.
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import type { Config } from "../../lib/config.ts";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import type { TriggerHandler } from "../../lib/services/triggers.ts";
import { buildTriggerHandler } from "../../lib/wiring/trigger.ts";
import { registerBackgroundWorker, type RunningWorker } from "./workers.ts";

/** The SQS event Lambda would deliver for these received messages. */
export function sqsEventFromMessages(messages: Message[], queueUrl: string, region: string): SQSEvent {
  const queueName = queueUrl.split("/").at(-1) ?? "queue";
  const account = queueUrl.split("/").at(-2) ?? "000000000000";
  return {
    Records: messages.map((message) => ({
      messageId: message.MessageId ?? "",
      receiptHandle: message.ReceiptHandle ?? "",
      body: message.Body ?? "",
      attributes: {
        ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? "1",
        SentTimestamp: message.Attributes?.SentTimestamp ?? String(Date.now()),
        SenderId: message.Attributes?.SenderId ?? "local",
        ApproximateFirstReceiveTimestamp:
          message.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: message.MD5OfBody ?? "",
      eventSource: "aws:sqs",
      eventSourceARN: `arn:aws:sqs:${region}:${account}:${queueName}`,
      awsRegion: region,
    })),
  };
}

export interface TriggerPollerOptions {
  queueUrl: string;
  sqs: SQSClient;
  handler: TriggerHandler;
  region: string;
  logger: Logger;
  /** Long-poll wait per receive, seconds (1-20). */
  waitSeconds?: number;
}

export interface TriggerPoller extends RunningWorker {
  /** One receive-handle-delete round; the number of messages received. */
  pollOnce(waitSeconds?: number): Promise<number>;
  /** Polls in the background until stop(). */
  start(): void;
}

export function createTriggerPoller(options: TriggerPollerOptions): TriggerPoller {
  const { queueUrl, sqs, handler, region, logger } = options;
  const waitSeconds = options.waitSeconds ?? 5;
  let stopped = false;
  let abort = new AbortController();
  let loop: Promise<void> | undefined;

  async function pollOnce(wait = waitSeconds): Promise<number> {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: wait,
        MessageSystemAttributeNames: ["All"],
      }),
      { abortSignal: abort.signal },
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return 0;
    const response = (await handler(sqsEventFromMessages(messages, queueUrl, region))) as SQSBatchResponse;
    const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    const done = messages.filter((message) => !failed.has(message.MessageId ?? ""));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle ?? "",
          })),
        }),
      );
    }
    return messages.length;
  }

  async function run(): Promise<void> {
    while (!stopped) {
      try {
        await pollOnce();
      } catch (error) {
        if (stopped) return;
        logger.error("trigger queue poll failed", { error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  return {
    pollOnce,
    start() {
      loop ??= run();
    },
    async stop() {
      stopped = true;
      abort.abort();
      await loop?.catch(() => undefined);
      abort = new AbortController();
    },
  };
}

export function startTriggerWorker(context: {
  env: Record<string, string>;
  config: Config;
  logger: Logger;
}): TriggerPoller {
  const queueUrl = context.env.TRIGGER_QUEUE_URL;
  if (!queueUrl) throw new Error("the local stack has no TRIGGER_QUEUE_URL");
  const poller = createTriggerPoller({
    queueUrl,
    // Long polls wait up to waitSeconds: the request timeout must outlast them.
    sqs: createSqsClient(context.config, { env: context.env, requestTimeoutMs: 30_000 }),
    handler: buildTriggerHandler(context.config, { env: context.env, logger: context.logger }),
    region: context.config.AWS_REGION,
    logger: context.logger,
  });
  poller.start();
  return poller;
}

registerBackgroundWorker({
  name: "trigger-poller",
  describe: (context) => `SQS poller: ${context.env.TRIGGER_QUEUE_URL?.split("/").at(-1)} → trigger handler`,
  async start(context) {
    return startTriggerWorker(context);
  },
});
