/** The local stack: parallel stacks, tables and queues from infra/resources.yml, the Redis fallbacks, clean stop. */
import { readFileSync } from "node:fs";
import net from "node:net";
import { DescribeTableCommand, DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_RESOURCES_FILE,
  readTemplateResources,
  redisAnswers,
  startLocalStack,
} from "../../infra/local/stack.ts";
import { loadConfig } from "../../lib/config.ts";
import { createDynamoDbClient, createSqsClient } from "../../lib/adapters/aws-clients.ts";

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function refusesConnections(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return false;
  } catch {
    return true;
  }
}

describe("readTemplateResources", () => {
  it("maps the tables and queues of infra/resources.yml to CreateTable / CreateQueue inputs", () => {
    const { tables, queues } = readTemplateResources(readFileSync(DEFAULT_RESOURCES_FILE, "utf8"));
    const executions = tables.find((t) => t.logicalId === "ExecutionsTable")!;
    expect(executions.env).toBe("EXECUTIONS_TABLE");
    expect(executions.input.TableName).toBe("mova-executions");
    expect(executions.input.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual([
      "byDay",
      "byProtocolTime",
    ]);
    expect(executions.input).not.toHaveProperty("SSESpecification");
    const analysis = queues.find((q) => q.logicalId === "AnalysisQueue")!;
    expect(analysis).toMatchObject({ deadLetterLogicalId: "AnalysisDeadLetterQueue", maxReceiveCount: 5 });
    expect(analysis.attributes.VisibilityTimeout).toBe("360");
  });

  it("rejects a template without resources and a redrive target that is not Fn::GetAtt", () => {
    expect(() => readTemplateResources("Outputs: {}")).toThrow(/no Resources/);
    const badRedrive = `Resources:
  AnalysisQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: { deadLetterTargetArn: "arn:aws:sqs:x", maxReceiveCount: 5 }`;
    expect(() => readTemplateResources(badRedrive)).toThrow(/Fn::GetAtt/);
  });
});

describe("startLocalStack", () => {
  it("starts two stacks in parallel on their own ports and stops both cleanly", async () => {
    const [a, b] = await Promise.all([startLocalStack({ memory: true }), startLocalStack({ memory: true })]);
    try {
      for (const stack of [a, b]) {
        for (const name of [
          "AWS_ENDPOINT_URL_DYNAMODB",
          "AWS_ENDPOINT_URL_SQS",
          "AWS_REGION",
          "AWS_ACCESS_KEY_ID",
          "AWS_SECRET_ACCESS_KEY",
          "DOCUMENTS_TABLE",
          "EXECUTIONS_TABLE",
          "PATTERNS_TABLE",
          "ANALYSIS_QUEUE_URL",
          "ANALYSIS_PRIORITY_QUEUE_URL",
          "ANALYSIS_DLQ_URL",
          "TRIGGER_QUEUE_URL",
          "UPSTASH_REDIS_REST_URL",
          "UPSTASH_REDIS_REST_TOKEN",
        ]) {
          expect(stack.env[name], name).toBeTruthy();
        }
        expect(stack.sessionBackend).toBe("redis");
      }
      expect(a.env.AWS_ENDPOINT_URL_DYNAMODB).not.toBe(b.env.AWS_ENDPOINT_URL_DYNAMODB);
      expect(a.env.AWS_ENDPOINT_URL_SQS).not.toBe(b.env.AWS_ENDPOINT_URL_SQS);
      expect(a.env.UPSTASH_REDIS_REST_URL).not.toBe(b.env.UPSTASH_REDIS_REST_URL);

      // The tables carry the template's indexes; the queues its redrive to the DLQ.
      const dynamo = createDynamoDbClient(loadConfig(a.env), { env: a.env });
      const sqs = createSqsClient(loadConfig(a.env), { env: a.env });
      const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: a.env.EXECUTIONS_TABLE }));
      expect(Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual([
        "byDay",
        "byProtocolTime",
      ]);
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: a.env.ANALYSIS_PRIORITY_QUEUE_URL,
          AttributeNames: ["All"],
        }),
      );
      const redrive = JSON.parse(Attributes?.RedrivePolicy ?? "{}");
      expect(redrive.deadLetterTargetArn).toMatch(/:mova-analysis-dlq$/);
      expect(Number(redrive.maxReceiveCount)).toBe(5);
      expect(Attributes?.VisibilityTimeout).toBe("360");
      dynamo.destroy();
      sqs.destroy();
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    for (const stack of [a, b]) {
      expect(await refusesConnections(stack.env.AWS_ENDPOINT_URL_DYNAMODB!)).toBe(true);
      expect(await refusesConnections(stack.env.AWS_ENDPOINT_URL_SQS!)).toBe(true);
      expect(await refusesConnections(stack.env.UPSTASH_REDIS_REST_URL!)).toBe(true);
    }
  });

  it("works with SDK clients that read only the standard endpoint variables", async () => {
    const stack = await startLocalStack({ memory: true });
    const saved = { ...process.env };
    try {
      // This file runs in its own worker; the SDK reads these from process.env by itself.
      Object.assign(process.env, stack.env);
      const dynamo = new DynamoDBClient({});
      const sqs = new SQSClient({});
      const { TableNames } = await dynamo.send(new ListTablesCommand({}));
      expect(TableNames).toContain(stack.env.DOCUMENTS_TABLE);
      // The queue URLs point at the stack itself, so the SDK can follow them.
      const sent = await sqs.send(
        new SendMessageCommand({ QueueUrl: stack.env.TRIGGER_QUEUE_URL, MessageBody: "{}" }),
      );
      expect(sent.MessageId).toBeTruthy();
      dynamo.destroy();
      sqs.destroy();
    } finally {
      for (const key of Object.keys(stack.env)) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
      await stack.stop();
    }
  });

  it("starts its own redis-server when nothing answers at the Redis URL, and stops it", async () => {
    const redisUrl = `redis://127.0.0.1:${await closedPort()}`;
    const stack = await startLocalStack({ memory: true, redisUrl });
    let startedUrl: string | undefined;
    try {
      expect(stack.sessionBackend).toBe("redis");
      const warning = stack.warnings.find((w) => w.includes("started"));
      expect(warning).toBeTruthy();
      // "no Redis answered at <asked>: started redis-server at <started>"
      startedUrl = warning?.match(/redis:\/\/127\.0\.0\.1:\d+/g)?.at(-1);
      expect(startedUrl).not.toBe(redisUrl);
      expect(startedUrl).toBeTruthy();
      expect(await redisAnswers(startedUrl!)).toBe(true);
    } finally {
      await stack.stop();
    }
    expect(await redisAnswers(startedUrl!)).toBe(false);
  });

  it("falls back to in-process sessions with a warning when no Redis can be had", async () => {
    const stack = await startLocalStack({
      memory: true,
      redisUrl: `redis://127.0.0.1:${await closedPort()}`,
      noRedisServer: true,
    });
    try {
      expect(stack.sessionBackend).toBe("memory");
      expect(stack.env.UPSTASH_REDIS_REST_URL).toBeUndefined();
      expect(stack.warnings.join("\n")).toMatch(/sessions are kept in process memory/);
    } finally {
      await stack.stop();
    }
  });

  it("keeps DynamoDB data on disk across restarts when not in memory", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const dataDir = mkdtempSync(path.join(tmpdir(), "mova-dynamo-"));
    try {
      const first = await startLocalStack({ dataDir, noRedisServer: true, redisUrl: "redis://127.0.0.1:1" });
      const { createDynamoDocumentStore } = await import("../../lib/adapters/dynamodb/document-store.ts");
      const client1 = createDynamoDbClient(loadConfig(first.env), { env: first.env });
      await createDynamoDocumentStore({ client: client1, table: first.env.DOCUMENTS_TABLE! }).put(
        "acme",
        "kept",
        {
          a: 1,
        },
      );
      client1.destroy();
      await first.stop();

      const second = await startLocalStack({ dataDir, noRedisServer: true, redisUrl: "redis://127.0.0.1:1" });
      const client2 = createDynamoDbClient(loadConfig(second.env), { env: second.env });
      const kept = await createDynamoDocumentStore({
        client: client2,
        table: second.env.DOCUMENTS_TABLE!,
      }).get("acme", "kept");
      client2.destroy();
      await second.stop();
      expect(kept?.source).toEqual({ a: 1 });
      expect(second.warnings.filter((w) => w.includes("lacks index"))).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
