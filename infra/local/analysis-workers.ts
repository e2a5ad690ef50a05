/**
 * The local stand-ins for the analysis functions' event sources, registered in `npm run dev`
 * by importing this module:
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
import { Logger } from "@aws-lambda-powertools/logger";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes } from "aws-lambda";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import {
  type AnalysisDeps,
  createAnalyzeHandler,
  createBatchAnalysisHandler,
} from "../../lib/services/analysis-handlers.ts";
import {
  type BackgroundWorker,
  registerBackgroundWorker,
  type RunningWorker,
  type WorkerContext,
} from "./workers.ts";

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

export interface QueuePollerOptions {
  sqs: SQSClient;
  region: string;
  /** Polled in this order; a queue is drained before the next is looked at. */
  queueUrls: string[];
  handler: (event: SQSEvent) => Promise<SQSBatchResponse | unknown>;
  /** Long-poll wait on the last queue (seconds). Default 1. */
  waitSeconds?: number;
  /** Seconds before a failed message is visible again. Default 2. */
  retryDelaySeconds?: number;
  maxMessages?: number;
  logger?: Logger;
  /** False: no background loop, rounds are driven with pollOnce (tests). Default true. */
  loop?: boolean;
  /** Called after each batch (tests observe the order with it). */
  onBatch?(queueUrl: string, messageIds: string[], failedIds: string[]): void;
}

export interface QueuePoller extends RunningWorker {
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
      if (retry.length > 0) {
        await sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: retry.map((m, i) => ({
              Id: String(i),
              ReceiptHandle: m.ReceiptHandle!,
              VisibilityTimeout: options.retryDelaySeconds ?? 2,
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

registerBackgroundWorker(analysisPollerWorker);
registerBackgroundWorker(analysisRunWorker);
