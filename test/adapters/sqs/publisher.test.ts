/** The SQS publisher against fauxqs, queues created from infra/resources.yml. */
import { ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../../infra/local/stack.ts";
import { loadConfig } from "../../../lib/config.ts";
import { ExecutionEventSchema } from "../../../lib/core/execution-event.ts";
import { createSqsClient } from "../../../lib/adapters/aws-clients.ts";
import { createSqsPublisher, SQS_MAX_MESSAGE_BYTES } from "../../../lib/adapters/sqs/publisher.ts";
import { longExecution, sampleExecution } from "../../support/runtime-fixtures.ts";

let stack: LocalStack;
let client: SQSClient;

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
  client = createSqsClient(loadConfig(stack.env), { env: stack.env });
});

afterAll(async () => {
  client?.destroy();
  await stack?.stop();
});

async function receiveAll(queueUrl: string) {
  const result = await client.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      MessageAttributeNames: ["All"],
    }),
  );
  return result.Messages ?? [];
}

describe("sqs publisher", () => {
  it("publishes one versioned event per execution with tenant, protocol and status attributes", async () => {
    const publisher = createSqsPublisher({
      client,
      queueUrl: stack.env.ANALYSIS_QUEUE_URL!,
      priorityQueueUrl: stack.env.ANALYSIS_PRIORITY_QUEUE_URL!,
      now: () => Date.parse("2032-01-01T00:00:00.000Z"),
    });
    const record = sampleExecution({ tenant: "acme", protocol: "refund", status: "completed" });
    await publisher.publishExecution(record);

    const messages = await receiveAll(stack.env.ANALYSIS_QUEUE_URL!);
    expect(messages).toHaveLength(1);
    const event = ExecutionEventSchema.parse(JSON.parse(messages[0]!.Body!));
    expect(event.publishedAt).toBe("2032-01-01T00:00:00.000Z");
    expect(event.execution).toEqual(record);
    const attributes = messages[0]!.MessageAttributes!;
    expect(attributes.tenant?.StringValue).toBe("acme");
    expect(attributes.protocol?.StringValue).toBe("refund");
    expect(attributes.status?.StringValue).toBe("completed");
    expect(await receiveAll(stack.env.ANALYSIS_PRIORITY_QUEUE_URL!)).toHaveLength(0);
  });

  it("sends failed and timed-out executions to the priority queue", async () => {
    const publisher = createSqsPublisher({
      client,
      queueUrl: stack.env.ANALYSIS_QUEUE_URL!,
      priorityQueueUrl: stack.env.ANALYSIS_PRIORITY_QUEUE_URL!,
    });
    const failed = sampleExecution({ status: "failed", error: { code: "llm_error", message: "down" } });
    const timedOut = sampleExecution({ status: "timed_out" });
    await publisher.publishExecution(failed);
    await publisher.publishExecution(timedOut);
    const priority = await receiveAll(stack.env.ANALYSIS_PRIORITY_QUEUE_URL!);
    const ids = priority
      .map((m) => ExecutionEventSchema.parse(JSON.parse(m.Body!)).execution.executionId)
      .sort();
    expect(ids).toEqual([failed.executionId, timedOut.executionId].sort());
    expect(await receiveAll(stack.env.ANALYSIS_QUEUE_URL!)).toHaveLength(0);

    // Without a priority queue, failures go to the main queue.
    const single = createSqsPublisher({ client, queueUrl: stack.env.ANALYSIS_QUEUE_URL! });
    await single.publishExecution(failed);
    expect(await receiveAll(stack.env.ANALYSIS_QUEUE_URL!)).toHaveLength(1);
  });

  it("drops step outputs to keep an oversized event under the SQS limit, and marks them", async () => {
    const publisher = createSqsPublisher({ client, queueUrl: stack.env.ANALYSIS_QUEUE_URL! });
    const record = sampleExecution();
    record.steps = Array.from({ length: 4 }, (_, n) => ({
      ...record.steps[0]!,
      id: `s${n}`,
      output: "x".repeat(100_000),
    }));
    await publisher.publishExecution(record);
    const [message] = await receiveAll(stack.env.ANALYSIS_QUEUE_URL!);
    expect(Buffer.byteLength(message!.Body!)).toBeLessThan(SQS_MAX_MESSAGE_BYTES);
    const event = ExecutionEventSchema.parse(JSON.parse(message!.Body!));
    expect(event.execution.steps).toHaveLength(4);
    expect(event.execution.steps.every((s) => s.output === undefined && s.outputTruncated === true)).toBe(
      true,
    );
    expect(event.execution.steps[0]?.prompt).toBe("say fine");
  });

  it("publishes a long run as its summary: the first steps, the whole run's counts, where it failed", async () => {
    const publisher = createSqsPublisher({ client, queueUrl: stack.env.ANALYSIS_QUEUE_URL! });
    for (const steps of [3_000, 100_000]) {
      const record = longExecution(steps, {
        status: "failed",
        error: { code: "tool_http_status", message: "503" },
      });
      await publisher.publishExecution(record);
      const [message] = await receiveAll(stack.env.ANALYSIS_QUEUE_URL!);
      expect(Buffer.byteLength(message!.Body!)).toBeLessThan(SQS_MAX_MESSAGE_BYTES);
      const { execution } = ExecutionEventSchema.parse(JSON.parse(message!.Body!));
      expect(execution).toMatchObject({ stepCount: steps, pathLength: steps, failedStepId: "count" });
      expect(execution.steps.length).toBeGreaterThan(1_000);
      expect(execution.steps).toEqual(record.steps.slice(0, execution.steps.length));
    }
  });

  it("propagates a failed send so the caller can mark the execution pending", async () => {
    const publisher = createSqsPublisher({
      client,
      queueUrl: stack.env.ANALYSIS_QUEUE_URL!.replace(/mova-analysis$/, "no-such-queue"),
    });
    await expect(publisher.publishExecution(sampleExecution())).rejects.toThrow();
  });
});
