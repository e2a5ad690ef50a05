/**
 * The local stand-in for Lambda's SQS event source mapping, one poller for every queue of the
 * local stack: it receives a batch, hands it to the real handler as a real SQS event, deletes
 * what the handler did not report as failed (partial batch response), and leaves the failed
 * messages for a retry (after `retryDelaySeconds`, or the queue's visibility timeout). fauxqs
 * honours the redrive policy: after the queue's receive count a message moves to its
 * dead-letter queue, as in SQS. Several queues are polled in order, each drained before the
 * next is looked at (the analysis polls its priority queue first).
 */
import { Logger } from "@aws-lambda-powertools/logger";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes } from "aws-lambda";
import type { RunningWorker } from "./workers.ts";

/** The SQS event Lambda would deliver for these received messages. */
export function toSqsEvent(messages: Message[], queueUrl: string, region: string): SQSEvent {
  const parts = queueUrl.split("/");
  const queueName = parts.at(-1) ?? "queue";
  const account = parts.at(-2) ?? "000000000000";
  return {
    Records: messages.map((message) => {
      const messageAttributes: SQSMessageAttributes = {};
      for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
        messageAttributes[name] = {
          dataType: value.DataType ?? "String",
          ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
          ...(value.BinaryValue !== undefined
            ? { binaryValue: Buffer.from(value.BinaryValue).toString("base64") }
            : {}),
          stringListValues: [],
          binaryListValues: [],
        };
      }
      const attributes = message.Attributes ?? {};
      return {
        messageId: message.MessageId ?? "",
        receiptHandle: message.ReceiptHandle ?? "",
        body: message.Body ?? "",
        attributes: {
          ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
          SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
          SenderId: attributes.SenderId ?? "local",
          ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        },
        messageAttributes,
        md5OfBody: message.MD5OfBody ?? "",
        eventSource: "aws:sqs",
        eventSourceARN: `arn:aws:sqs:${region}:${account}:${queueName}`,
        awsRegion: region,
      };
    }),
  };
}

interface QueuePollerOptions {
  sqs: SQSClient;
  region: string;
  /** Polled in this order; a queue is drained before the next is looked at. */
  queueUrls: string[];
  handler: (event: SQSEvent) => Promise<SQSBatchResponse | unknown>;
  /** Long-poll wait on the last queue (seconds). Default 1. */
  waitSeconds?: number;
  /**
   * Seconds before a failed message is visible again. Absent: it waits out the queue's
   * visibility timeout, as with Lambda's event source mapping.
   */
  retryDelaySeconds?: number;
  maxMessages?: number;
  logger?: Logger;
  /** False: no background loop, rounds are driven with pollOnce (tests). Default true. */
  loop?: boolean;
  /** Called after each batch (tests observe the order with it). */
  onBatch?(queueUrl: string, messageIds: string[], failedIds: string[]): void;
}

interface QueuePoller extends RunningWorker {
  /** One round: the first queue (in order) with messages gives one batch. False when all were empty. */
  pollOnce(): Promise<boolean>;
}

export function startQueuePoller(options: QueuePollerOptions): QueuePoller {
  const { sqs, queueUrls } = options;
  const logger = options.logger ?? new Logger({ serviceName: "mova-local-poller", logLevel: "WARN" });
  let stopped = false;
  let abort = new AbortController();

  async function pollOnce(): Promise<boolean> {
    for (const [index, queueUrl] of queueUrls.entries()) {
      const last = index === queueUrls.length - 1;
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: options.maxMessages ?? 10,
          // Only the last queue waits: a message arriving on an earlier one is seen next round.
          WaitTimeSeconds: last ? (options.waitSeconds ?? 1) : 0,
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["All"],
        }),
        { abortSignal: abort.signal },
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) continue;
      const event = toSqsEvent(messages, queueUrl, options.region);
      let failedIds: string[];
      try {
        const response = (await options.handler(event)) as SQSBatchResponse | undefined;
        failedIds = (response?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
      } catch (error) {
        logger.error("handler failed for the whole batch", { error: error as Error });
        failedIds = messages.map((m) => m.MessageId ?? "");
      }
      const failed = new Set(failedIds);
      const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
      if (done.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
      }
      const retry = messages.filter((m) => failed.has(m.MessageId ?? ""));
      if (retry.length > 0 && options.retryDelaySeconds !== undefined) {
        await sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: retry.map((m, i) => ({
              Id: String(i),
              ReceiptHandle: m.ReceiptHandle!,
              VisibilityTimeout: options.retryDelaySeconds,
            })),
          }),
        );
      }
      options.onBatch?.(
        queueUrl,
        messages.map((m) => m.MessageId ?? ""),
        failedIds,
      );
      return true;
    }
    return false;
  }

  const loop = (async () => {
    while (!stopped && options.loop !== false) {
      try {
        await pollOnce();
      } catch (error) {
        if (stopped) break;
        logger.warn("poll failed; retrying", { error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  })();

  return {
    pollOnce,
    async stop() {
      stopped = true;
      abort.abort();
      abort = new AbortController();
      await loop;
    },
  };
}
