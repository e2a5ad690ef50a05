/**
 * Event-driven runs against the local stack (dynalite, fauxqs) with a fake OpenAI-compatible
 * server on loopback: EventBridge events and SQS messages through the real trigger queue run
 * the real trigger handler, which records, publishes and deduplicates like the API; a run
 * that outlives its budget goes on in the runner.
 */
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { Logger } from "@aws-lambda-powertools/logger";
import type { EventBridgeEvent, SQSBatchResponse } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Config, loadConfig } from "../../lib/config.ts";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import type { RuntimeDeps } from "../../lib/services/runtime-deps.ts";
import { buildRuntimeDeps } from "../../lib/wiring/runtime.ts";
import { buildTriggerHandler } from "../../lib/wiring/trigger.ts";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import type { TriggerHandler, TriggerOutcome } from "../../lib/services/triggers.ts";
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { startQueuePoller, toSqsEvent } from "../../infra/local/sqs-poller.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";

let stack: LocalStack;
let llm: FakeOpenAi;
let env: Record<string, string>;
let config: Config;
let deps: RuntimeDeps;
let handler: TriggerHandler;
let sqs: SQSClient;

const quiet = () => new Logger({ serviceName: "mova-trigger-test", logLevel: "SILENT" });

const greeter = {
  version: "2.2",
  protocols: [
    {
      name: "greet",
      inputs: ["name"],
      steps: [
        { id: "say", action: "prompt", prompt: "Greet {name}" },
        { id: "end", action: "end" },
      ],
    },
  ],
};

function runRequested(detail: unknown): EventBridgeEvent<string, unknown> {
  return {
    version: "0",
    id: `evt-${Math.random().toString(36).slice(2)}`,
    "detail-type": "mova.run.requested",
    source: "test.orders",
    account: "123456789012",
    time: new Date().toISOString(),
    region: "us-east-1",
    resources: [],
    detail,
  };
}

async function receiveAll(queueUrl: string, waitSeconds = 1): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: messages.length === 0 ? waitSeconds : 0,
      }),
    );
    const batch = received.Messages ?? [];
    if (batch.length === 0) return messages;
    messages.push(...batch);
  }
}

async function drain(queueUrl: string, waitSeconds = 1): Promise<Message[]> {
  const messages = await receiveAll(queueUrl, waitSeconds);
  for (const message of messages) {
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
  }
  return messages;
}

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
  llm = await startFakeOpenAi();
  env = {
    ...stack.env,
    LLM_API_KEY: "sk-test",
    LLM_BASE_URL: llm.baseURL,
    LLM_MAX_RETRIES: "0",
    LLM_MODEL: "fake-model",
    LOG_LEVEL: "SILENT",
  };
  config = loadConfig(env);
  deps = buildRuntimeDeps(config, { env, logger: quiet() });
  handler = buildTriggerHandler(config, { env, logger: quiet() });
  sqs = createSqsClient(config, { env });
  await deps.documents.put("dev", "greeter", greeter);
  await deps.documents.put("acme", "greeter", greeter);
});

afterAll(async () => {
  await llm?.close();
  await stack?.stop();
});

describe("EventBridge mova.run.requested", () => {
  it("runs the protocol, records it with trigger event and publishes it for analysis", async () => {
    await drain(env.ANALYSIS_QUEUE_URL!, 0);
    const outcome = (await handler(
      runRequested({ tenant: "dev", document: "greeter", protocol: "greet", variables: { name: "Ada" } }),
    )) as TriggerOutcome;
    expect(outcome).toMatchObject({ state: "ran", status: "completed", analysis: "published" });
    const executionId = (outcome as { executionId: string }).executionId;

    const record = await deps.history.getExecution("dev", executionId);
    expect(record).toMatchObject({
      tenant: "dev",
      document: "greeter",
      protocol: "greet",
      trigger: "event",
      status: "completed",
      path: ["say", "end"],
    });
    expect(record?.steps[0]?.output).toBe("reply: Greet Ada");

    const events = (await drain(env.ANALYSIS_QUEUE_URL!)).map((m) => JSON.parse(m.Body!));
    const event = events.find((e) => e.execution.executionId === executionId);
    expect(event).toMatchObject({ type: "mova.execution.finished", execution: { trigger: "event" } });
  });

  it("a run that outlives its budget is recorded running and checkpointed, and the runner completes it", async () => {
    await drain(env.ANALYSIS_QUEUE_URL!, 0);
    await drain(env.RUNS_QUEUE_URL!, 0);
    const budgetless = loadConfig({ ...env, SYNC_BUDGET_MS: "0" });
    const trigger = buildTriggerHandler(budgetless, { env, logger: quiet() });
    const outcome = (await trigger(
      runRequested({ tenant: "dev", document: "greeter", protocol: "greet", variables: { name: "Lev" } }),
    )) as TriggerOutcome;
    expect(outcome).toMatchObject({ state: "ran", status: "running", analysis: "waiting" });
    const executionId = (outcome as { executionId: string }).executionId;
    expect(await deps.history.getExecution("dev", executionId)).toMatchObject({
      status: "running",
      trigger: "event",
      path: ["say"],
    });
    expect((await deps.checkpoints.get("dev", executionId))?.state).toMatchObject({
      status: "running",
      next: "end",
      stepCount: 1,
    });
    // Nothing running is published; the run is on the runs queue.
    expect(await drain(env.ANALYSIS_QUEUE_URL!, 0)).toHaveLength(0);
    const handed = await drain(env.RUNS_QUEUE_URL!);
    expect(handed.map((m) => JSON.parse(m.Body!))).toEqual([{ tenant: "dev", executionId }]);

    const runner = buildRunnerHandler(config, { env, logger: quiet() });
    const answer = await runner(toSqsEvent(handed, env.RUNS_QUEUE_URL!, config.AWS_REGION), {
      awsRequestId: "trigger-test",
      getRemainingTimeInMillis: () => 60_000,
    });
    expect(answer.batchItemFailures).toEqual([]);
    expect(await deps.history.getExecution("dev", executionId)).toMatchObject({
      status: "completed",
      path: ["say", "end"],
      output: "reply: Greet Lev",
      analysis: "published",
    });
    const events = (await drain(env.ANALYSIS_QUEUE_URL!)).filter((m) => m.Body?.includes(executionId));
    expect(events).toHaveLength(1);
  });

  it("throws on an unknown document or a malformed detail, so Lambda's retries and destination apply", async () => {
    await expect(
      handler(runRequested({ tenant: "dev", document: "missing", protocol: "greet" })),
    ).rejects.toMatchObject({ code: "document_not_found", retryable: false });
    await expect(handler(runRequested({ tenant: "dev", protocol: "greet" }))).rejects.toMatchObject({
      code: "invalid_run_request",
    });
    await expect(
      handler(runRequested({ tenant: "dev", document: "greeter", protocol: "nope" })),
    ).rejects.toMatchObject({ code: "unknown_protocol" });
    // Tenants do not see each other's documents.
    await expect(
      handler(runRequested({ tenant: "other", document: "greeter", protocol: "greet" })),
    ).rejects.toMatchObject({ code: "document_not_found" });
  });
});

describe("idempotency", () => {
  it("a repeated key runs once (EventBridge and SQS alike); the same key in another tenant runs", async () => {
    const before = llm.completions().length;
    const request = {
      tenant: "dev",
      document: "greeter",
      protocol: "greet",
      variables: { name: "Once" },
      idempotencyKey: "order-1001",
    };
    const first = (await handler(runRequested(request))) as TriggerOutcome & { executionId: string };
    expect(first.state).toBe("ran");
    const again = (await handler(runRequested(request))) as TriggerOutcome;
    expect(again).toEqual({ state: "replayed", executionId: first.executionId, status: "completed" });

    await sqs.send(
      new SendMessageCommand({ QueueUrl: env.TRIGGER_QUEUE_URL, MessageBody: JSON.stringify(request) }),
    );
    const messages = await receiveAll(env.TRIGGER_QUEUE_URL!);
    const response = (await handler(
      toSqsEvent(messages, env.TRIGGER_QUEUE_URL!, config.AWS_REGION),
    )) as SQSBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    for (const m of messages)
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: env.TRIGGER_QUEUE_URL, ReceiptHandle: m.ReceiptHandle }),
      );

    expect(llm.completions().length - before).toBe(1);
    const page = await deps.history.queryExecutions("dev", "greeter", "greet", { limit: 100 });
    expect(page.items.filter((r) => r.steps[0]?.prompt === "Greet Once")).toHaveLength(1);

    const otherTenant = (await handler(runRequested({ ...request, tenant: "acme" }))) as TriggerOutcome;
    expect(otherTenant.state).toBe("ran");
  });

  it("a key reused for a different request is rejected, not run", async () => {
    const base = { tenant: "dev", document: "greeter", protocol: "greet", idempotencyKey: "order-2002" };
    await handler(runRequested({ ...base, variables: { name: "First" } }));
    const before = llm.completions().length;
    await expect(handler(runRequested({ ...base, variables: { name: "Second" } }))).rejects.toMatchObject({
      code: "idempotency_key_reused",
      retryable: false,
    });
    expect(llm.completions().length).toBe(before);
  });

  it("a repeated key while the first runs is retryable in progress; a run that failed frees its key", async () => {
    const request = {
      tenant: "dev",
      document: "greeter",
      protocol: "greet",
      variables: { name: "Slow" },
      idempotencyKey: "order-3003",
    };
    llm.setDelay(400);
    try {
      const first = handler(runRequested(request));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await expect(handler(runRequested(request))).rejects.toMatchObject({
        code: "idempotency_in_progress",
        retryable: true,
      });
      expect(await first).toMatchObject({ state: "ran", status: "completed" });
    } finally {
      llm.setDelay(0);
    }

    const late = {
      tenant: "dev",
      document: "greeter-later",
      protocol: "greet",
      idempotencyKey: "order-4004",
    };
    await expect(handler(runRequested(late))).rejects.toMatchObject({ code: "document_not_found" });
    await deps.documents.put("dev", "greeter-later", greeter);
    expect(await handler(runRequested(late))).toMatchObject({ state: "ran", status: "completed" });
  });
});

describe("SQS trigger queue", () => {
  it("runs a message received from the real queue; an EventBridge envelope as the body works too", async () => {
    await drain(env.TRIGGER_QUEUE_URL!, 0);
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: env.TRIGGER_QUEUE_URL,
        MessageBody: JSON.stringify({
          tenant: "dev",
          document: "greeter",
          protocol: "greet",
          variables: { name: "Queue" },
        }),
      }),
    );
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: env.TRIGGER_QUEUE_URL,
        MessageBody: JSON.stringify(
          runRequested({
            tenant: "dev",
            document: "greeter",
            protocol: "greet",
            variables: { name: "Envelope" },
          }),
        ),
      }),
    );
    const messages = await receiveAll(env.TRIGGER_QUEUE_URL!);
    expect(messages).toHaveLength(2);
    const response = (await handler(
      toSqsEvent(messages, env.TRIGGER_QUEUE_URL!, config.AWS_REGION),
    )) as SQSBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    for (const m of messages)
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: env.TRIGGER_QUEUE_URL, ReceiptHandle: m.ReceiptHandle }),
      );

    const page = await deps.history.queryExecutions("dev", "greeter", "greet", { limit: 100 });
    const prompts = page.items.filter((r) => r.trigger === "event").map((r) => r.steps[0]?.prompt);
    expect(prompts).toEqual(expect.arrayContaining(["Greet Queue", "Greet Envelope"]));
  });

  it("a malformed message fails alone in a batch of three; the local poller deletes only the two that ran", async () => {
    await drain(env.TRIGGER_QUEUE_URL!, 0);
    const good = (name: string) =>
      JSON.stringify({ tenant: "dev", document: "greeter", protocol: "greet", variables: { name } });
    for (const body of [good("Left"), "{not json", good("Right")]) {
      await sqs.send(new SendMessageCommand({ QueueUrl: env.TRIGGER_QUEUE_URL, MessageBody: body }));
    }
    const responses: SQSBatchResponse[] = [];
    const bodies = new Map<string, string>();
    let received = 0;
    const poller = startQueuePoller({
      queueUrls: [env.TRIGGER_QUEUE_URL!],
      sqs,
      waitSeconds: 1,
      loop: false,
      onBatch: (_queue, ids) => {
        received += ids.length;
      },
      region: config.AWS_REGION,
      logger: quiet(),
      handler: async (event) => {
        for (const record of "Records" in event ? event.Records : [])
          bodies.set(record.messageId, record.body);
        const response = (await handler(event)) as SQSBatchResponse;
        responses.push(response);
        return response;
      },
    });
    for (let round = 0; round < 5 && received < 3; round++) await poller.pollOnce();
    expect(received).toBe(3);

    const failures = responses.flatMap((r) => r.batchItemFailures.map((f) => f.itemIdentifier));
    expect(failures).toHaveLength(1);
    expect(bodies.get(failures[0]!)).toBe("{not json");

    // The failed message stays on the queue (in flight until its visibility timeout), the others are gone.
    const attributes = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: env.TRIGGER_QUEUE_URL,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    expect(attributes.Attributes?.ApproximateNumberOfMessages).toBe("0");
    expect(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible).toBe("1");

    const page = await deps.history.queryExecutions("dev", "greeter", "greet", { limit: 100 });
    const prompts = page.items.map((r) => r.steps[0]?.prompt);
    expect(prompts).toEqual(expect.arrayContaining(["Greet Left", "Greet Right"]));
  });
});
