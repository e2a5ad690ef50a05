/**
 * Publishes finished executions to the analysis queue: one SQS message per execution, the
 * body an ExecutionEvent (lib/core/execution-event.ts), with message attributes `tenant`,
 * `protocol` and `status` for filtering and routing without parsing the body. Failed and
 * timed-out executions go to the priority queue when there is one, so a backlog of
 * successes never delays the analysis of failures. Errors propagate: the caller keeps the
 * execution and marks it `analysis: "pending"` for the batch analysis.
 */
import { type MessageAttributeValue, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import {
  EXECUTION_EVENT_TYPE,
  EXECUTION_EVENT_VERSION,
  type ExecutionEvent,
} from "../../core/execution-event.ts";
import type { ExecutionRecord } from "../../core/execution-record.ts";
import type { EventPublisher } from "../../ports.ts";
import { shrinkRecord, summarizeRecord, utf8Bytes } from "../../core/record-size.ts";
import { MovaError } from "../../errors.ts";

interface SqsPublisherOptions {
  client: SQSClient;
  queueUrl: string;
  /** Where failed and timed-out executions go; the main queue when absent. */
  priorityQueueUrl?: string;
  /** Epoch ms; `Date.now` by default. */
  now?: () => number;
}

/** SQS's limit for body plus attributes. */
export const SQS_MAX_MESSAGE_BYTES = 262_144;

const PRIORITY_STATUSES = new Set<ExecutionRecord["status"]>(["failed", "timed_out"]);

export function createSqsPublisher(options: SqsPublisherOptions): EventPublisher {
  const now = options.now ?? Date.now;
  return {
    async publishExecution(record) {
      const attributes: Record<string, MessageAttributeValue> = {
        tenant: { DataType: "String", StringValue: record.tenant },
        protocol: { DataType: "String", StringValue: record.protocol },
        status: { DataType: "String", StringValue: record.status },
      };
      const attributeBytes = Object.entries(attributes).reduce(
        (sum, [name, value]) =>
          sum + utf8Bytes(name) + utf8Bytes(value.DataType ?? "") + utf8Bytes(value.StringValue ?? ""),
        0,
      );
      const publishedAt = new Date(now()).toISOString();
      const bodyOf = (execution: ExecutionRecord) => sqsSafeJson(eventOf(execution, publishedAt));
      // A long run travels as its summary, the one its history item keeps (record-size.ts).
      const fitted = shrinkRecord(summarizeRecord(record), SQS_MAX_MESSAGE_BYTES - attributeBytes, (r) =>
        utf8Bytes(bodyOf(r)),
      );
      const body = bodyOf(fitted);
      const bytes = utf8Bytes(body) + attributeBytes;
      if (bytes > SQS_MAX_MESSAGE_BYTES)
        throw new MovaError(
          "event_too_large",
          `the execution event is ${bytes} bytes even without step outputs and prompts; SQS takes ${SQS_MAX_MESSAGE_BYTES}`,
        );
      const priority = PRIORITY_STATUSES.has(record.status) && options.priorityQueueUrl;
      await options.client.send(
        new SendMessageCommand({
          QueueUrl: priority ? options.priorityQueueUrl : options.queueUrl,
          MessageBody: body,
          MessageAttributes: attributes,
        }),
      );
    },
  };
}

function eventOf(execution: ExecutionRecord, publishedAt: string): ExecutionEvent {
  return { type: EXECUTION_EVENT_TYPE, version: EXECUTION_EVENT_VERSION, publishedAt, execution };
}

/**
 * JSON.stringify escapes control characters and lone surrogates already; U+FFFE and U+FFFF
 * are valid JSON but outside the characters SQS accepts, so they are escaped too.
 */
function sqsSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}
