/**
 * The local stack: the deployed system's AWS and SaaS parts with local endpoints.
 * - DynamoDB: dynalite, in-process (in memory, or LevelDB files under `dataDir`).
 * - SQS: fauxqs 2, in-process.
 * - Upstash Redis REST: the Upstash-compatible bridge (@humanwhocodes/upstash-redis-server),
 *   as a child process (see upstash-bridge.mjs), in front of a real Redis: the one at
 *   `redisUrl`, else a `redis-server` started here, else none (sessions in process memory).
 * Tables and queues are created from infra/resources.yml, the CloudFormation the deployment
 * uses, so there is one definition of every table schema and queue setting.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdirSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  type AttributeDefinition,
  type CreateTableCommandInput,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type LocalSecondaryIndex,
} from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import dynalite from "dynalite";
import { buildApp } from "fauxqs";
// fauxqs's own startFauxqs() names queues `http://sqs.<region>.localhost:<port>/…`, a host
// Node cannot resolve; an SDK client that reads AWS_ENDPOINT_URL_SQS by itself then follows
// that URL and fails (ENOTFOUND). With a store whose `host` is empty, fauxqs names each queue
// after the Host it was created through: `http://127.0.0.1:<port>/000000000000/<name>`,
// which every client (and curl) reaches. The stores are not in the package's exports map.
import { S3Store } from "../../node_modules/fauxqs/dist/s3/s3Store.js";
import { SnsStore } from "../../node_modules/fauxqs/dist/sns/snsStore.js";
import { SqsStore } from "../../node_modules/fauxqs/dist/sqs/sqsStore.js";
import { parse as parseYaml } from "yaml";

export interface LocalStackOptions {
  /** Keep DynamoDB data in memory only (default: on disk under `dataDir`). */
  memory?: boolean;
  /** LevelDB directory of dynalite when not in memory; `.mova/dynamodb` by default. */
  dataDir?: string;
  /** The Redis behind the bridge; `REDIS_URL`, else `redis://127.0.0.1:6379`. */
  redisUrl?: string;
  /** 0 or absent = any free port. */
  ports?: { dynamodb?: number; sqs?: number; redisRest?: number };
  /** infra/resources.yml by default. */
  resourcesFile?: string;
  /** Never start a `redis-server` of its own (tests of the memory fallback). */
  noRedisServer?: boolean;
}

export interface LocalStack {
  /**
   * AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS, AWS_REGION, AWS_ACCESS_KEY_ID,
   * AWS_SECRET_ACCESS_KEY, DOCUMENTS_TABLE, EXECUTIONS_TABLE, PATTERNS_TABLE,
   * ANALYSIS_QUEUE_URL, ANALYSIS_PRIORITY_QUEUE_URL, ANALYSIS_DLQ_URL, TRIGGER_QUEUE_URL,
   * TRIGGER_DLQ_URL, RUNS_QUEUE_URL, RUNS_DLQ_URL and, with the redis backend, UPSTASH_REDIS_REST_URL/_TOKEN.
   */
  env: Record<string, string>;
  sessionBackend: "redis" | "memory";
  warnings: string[];
  stop(): Promise<void>;
}

const REGION = "us-east-1";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DEFAULT_RESOURCES_FILE = path.join(ROOT, "infra/resources.yml");
const BRIDGE_SCRIPT = path.join(ROOT, "infra/local/upstash-bridge.mjs");

/**
 * The template's physical names are Serverless variables resolved only on deploy; locally
 * each logical id gets a fixed name and the environment variable the runtime reads.
 */
const LOCAL_RESOURCES: Record<string, { name: string; env: string }> = {
  DocumentsTable: { name: "mova-documents", env: "DOCUMENTS_TABLE" },
  ExecutionsTable: { name: "mova-executions", env: "EXECUTIONS_TABLE" },
  PatternsTable: { name: "mova-patterns", env: "PATTERNS_TABLE" },
  AnalysisQueue: { name: "mova-analysis", env: "ANALYSIS_QUEUE_URL" },
  AnalysisPriorityQueue: { name: "mova-analysis-priority", env: "ANALYSIS_PRIORITY_QUEUE_URL" },
  AnalysisDeadLetterQueue: { name: "mova-analysis-dlq", env: "ANALYSIS_DLQ_URL" },
  AnalysisRunQueue: { name: "mova-analysis-run", env: "ANALYSIS_RUN_QUEUE_URL" },
  TriggerQueue: { name: "mova-trigger", env: "TRIGGER_QUEUE_URL" },
  TriggerDeadLetterQueue: { name: "mova-trigger-dlq", env: "TRIGGER_DLQ_URL" },
  RunsQueue: { name: "mova-runs", env: "RUNS_QUEUE_URL" },
  RunsDeadLetterQueue: { name: "mova-runs-dlq", env: "RUNS_DLQ_URL" },
};

// ---------------------------------------------------------------------------------------
// The template

interface LocalTableDefinition {
  logicalId: string;
  env: string;
  input: CreateTableCommandInput;
}

interface LocalQueueDefinition {
  logicalId: string;
  env: string;
  name: string;
  /** CreateQueue attributes; RedrivePolicy still names its target by logical id. */
  attributes: Record<string, string>;
  deadLetterLogicalId?: string;
  maxReceiveCount?: number;
}

type Json = Record<string, unknown>;

/** The tables and queues of a CloudFormation template, as CreateTable / CreateQueue inputs. */
export function readTemplateResources(templateText: string): {
  tables: LocalTableDefinition[];
  queues: LocalQueueDefinition[];
  warnings: string[];
} {
  const template = parseYaml(templateText) as {
    Resources?: Record<string, { Type?: string; Properties?: Json }>;
  };
  const resources = template?.Resources;
  if (!resources || typeof resources !== "object") throw new Error("the template has no Resources");
  const tables: LocalTableDefinition[] = [];
  const queues: LocalQueueDefinition[] = [];
  const warnings: string[] = [];
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (resource?.Type !== "AWS::DynamoDB::Table" && resource?.Type !== "AWS::SQS::Queue") continue;
    let local = LOCAL_RESOURCES[logicalId];
    if (!local) {
      local = derivedLocalResource(logicalId, resource.Type);
      warnings.push(
        `${logicalId} is not in LOCAL_RESOURCES; created locally as ${local.name} (${local.env})`,
      );
    }
    const properties = resource.Properties ?? {};
    if (resource.Type === "AWS::DynamoDB::Table") {
      tables.push({ logicalId, env: local.env, input: tableInput(local.name, properties) });
    } else {
      queues.push({ logicalId, env: local.env, name: local.name, ...queueAttributes(logicalId, properties) });
    }
  }
  return { tables, queues, warnings };
}

function derivedLocalResource(logicalId: string, type: string) {
  const words = logicalId.replace(/(Table|Queue)$/, "").replace(/([a-z0-9])([A-Z])/g, "$1_$2");
  const suffix = type === "AWS::DynamoDB::Table" ? "TABLE" : "QUEUE_URL";
  return { name: `mova-${words.toLowerCase().replace(/_/g, "-")}`, env: `${words.toUpperCase()}_${suffix}` };
}

function tableInput(tableName: string, p: Json): CreateTableCommandInput {
  const keySchema = (list: unknown) =>
    (list as Json[]).map(
      (k) => ({ AttributeName: String(k.AttributeName), KeyType: k.KeyType }) as KeySchemaElement,
    );
  const projection = (value: unknown) => {
    const v = (value ?? { ProjectionType: "ALL" }) as Json;
    return {
      ProjectionType: v.ProjectionType as "ALL" | "KEYS_ONLY" | "INCLUDE",
      ...(v.NonKeyAttributes ? { NonKeyAttributes: (v.NonKeyAttributes as unknown[]).map(String) } : {}),
    };
  };
  const onDemand = p.BillingMode === "PAY_PER_REQUEST";
  const throughput = (value: unknown) => {
    const v = (value ?? {}) as Json;
    return {
      ReadCapacityUnits: Number(v.ReadCapacityUnits ?? 5),
      WriteCapacityUnits: Number(v.WriteCapacityUnits ?? 5),
    };
  };
  const input: CreateTableCommandInput = {
    TableName: tableName,
    AttributeDefinitions: (p.AttributeDefinitions as Json[]).map(
      (a) =>
        ({ AttributeName: String(a.AttributeName), AttributeType: a.AttributeType }) as AttributeDefinition,
    ),
    KeySchema: keySchema(p.KeySchema),
    ...(onDemand
      ? { BillingMode: "PAY_PER_REQUEST" }
      : { ProvisionedThroughput: throughput(p.ProvisionedThroughput) }),
  };
  if (Array.isArray(p.GlobalSecondaryIndexes)) {
    input.GlobalSecondaryIndexes = (p.GlobalSecondaryIndexes as Json[]).map(
      (index) =>
        ({
          IndexName: String(index.IndexName),
          KeySchema: keySchema(index.KeySchema),
          Projection: projection(index.Projection),
          ...(onDemand ? {} : { ProvisionedThroughput: throughput(index.ProvisionedThroughput) }),
        }) as GlobalSecondaryIndex,
    );
  }
  if (Array.isArray(p.LocalSecondaryIndexes)) {
    input.LocalSecondaryIndexes = (p.LocalSecondaryIndexes as Json[]).map(
      (index) =>
        ({
          IndexName: String(index.IndexName),
          KeySchema: keySchema(index.KeySchema),
          Projection: projection(index.Projection),
        }) as LocalSecondaryIndex,
    );
  }
  // TimeToLiveSpecification, PointInTimeRecoverySpecification, SSESpecification, Tags:
  // not supported by dynalite (it has no UpdateTimeToLive; items never expire locally).
  return input;
}

/** Queue properties that are CreateQueue attributes of the same name. */
const QUEUE_ATTRIBUTES = [
  "DelaySeconds",
  "MaximumMessageSize",
  "MessageRetentionPeriod",
  "ReceiveMessageWaitTimeSeconds",
  "VisibilityTimeout",
  "FifoQueue",
  "ContentBasedDeduplication",
  "DeduplicationScope",
  "FifoThroughputLimit",
];

function queueAttributes(logicalId: string, p: Json) {
  const attributes: Record<string, string> = {};
  for (const name of QUEUE_ATTRIBUTES) {
    const value = p[name];
    if (value === undefined) continue;
    if (typeof value === "object")
      throw new Error(`${logicalId}.${name} must be a literal value, not ${JSON.stringify(value)}`);
    attributes[name] = String(value);
  }
  const redrive = p.RedrivePolicy as Json | undefined;
  if (!redrive) return { attributes };
  const target = redrive.deadLetterTargetArn as Json | undefined;
  const getAtt = target?.["Fn::GetAtt"];
  const deadLetterLogicalId = Array.isArray(getAtt) && getAtt[1] === "Arn" ? String(getAtt[0]) : undefined;
  if (!deadLetterLogicalId) {
    throw new Error(`${logicalId}.RedrivePolicy.deadLetterTargetArn must be Fn::GetAtt: [Queue, Arn]`);
  }
  return { attributes, deadLetterLogicalId, maxReceiveCount: Number(redrive.maxReceiveCount ?? 5) };
}

// ---------------------------------------------------------------------------------------
// The stack

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const warnings: string[] = [];
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    // Reverse order: the bridge before the Redis it talks to.
    for (const stopOne of stops.splice(0).reverse()) {
      await stopOne().catch(() => undefined);
    }
  };
  try {
    const template = readTemplateResources(
      readFileSync(options.resourcesFile ?? DEFAULT_RESOURCES_FILE, "utf8"),
    );
    warnings.push(...template.warnings);
    const credentials = { accessKeyId: "local", secretAccessKey: "local" };

    // DynamoDB
    const dataDir = options.memory ? undefined : path.resolve(options.dataDir ?? ".mova/dynamodb");
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    const dynamoServer = dynalite({
      ...(dataDir ? { path: dataDir } : {}),
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
    });
    const dynamoPort = await listen(dynamoServer, options.ports?.dynamodb ?? 0);
    stops.push(() => closeHttpServer(dynamoServer));
    const dynamoEndpoint = `http://127.0.0.1:${dynamoPort}`;

    // SQS
    const sqsStore = new SqsStore();
    sqsStore.host = "";
    const sqsApp = buildApp({
      logger: false,
      defaultRegion: REGION,
      stores: { sqsStore, snsStore: new SnsStore(), s3Store: new S3Store() },
    });
    await sqsApp.listen({ port: options.ports?.sqs ?? 0, host: "127.0.0.1" });
    stops.push(() => sqsApp.close());
    const sqsEndpoint = `http://127.0.0.1:${(sqsApp.server.address() as net.AddressInfo).port}`;

    const env: Record<string, string> = {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
      AWS_ENDPOINT_URL_SQS: sqsEndpoint,
    };

    const dynamo = new DynamoDBClient({ region: REGION, endpoint: dynamoEndpoint, credentials });
    const sqs = new SQSClient({ region: REGION, endpoint: sqsEndpoint, credentials });
    try {
      for (const table of template.tables) {
        warnings.push(...(await createTable(dynamo, table.input)));
        env[table.env] = table.input.TableName!;
      }
      for (const queue of orderByDeadLetter(template.queues)) {
        env[queue.env] = await createQueue(sqs, queue, template.queues, env);
      }
    } finally {
      dynamo.destroy();
      sqs.destroy();
    }

    // Sessions
    const sessions = await startSessionBackend(options, warnings, stops);
    Object.assign(env, sessions.env);

    return { env, sessionBackend: sessions.backend, warnings, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function createTable(dynamo: DynamoDBClient, input: CreateTableCommandInput): Promise<string[]> {
  try {
    await dynamo.send(new CreateTableCommand(input));
    return [];
  } catch (error) {
    if ((error as Error).name !== "ResourceInUseException") throw error;
  }
  // Kept from an earlier run (data on disk): say so when its indexes are not the template's.
  const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: input.TableName }));
  const existing = new Set((Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
  const missing = (input.GlobalSecondaryIndexes ?? []).filter((index) => !existing.has(index.IndexName));
  return missing.length > 0
    ? [
        `table ${input.TableName} on disk lacks index ${missing.map((i) => i.IndexName).join(", ")}: ` +
          "delete the data directory (.mova/dynamodb) to recreate it",
      ]
    : [];
}

function orderByDeadLetter(queues: LocalQueueDefinition[]): LocalQueueDefinition[] {
  // Dead-letter queues first: a redrive policy needs its target's ARN.
  return [...queues].sort(
    (a, b) => Number(Boolean(a.deadLetterLogicalId)) - Number(Boolean(b.deadLetterLogicalId)),
  );
}

async function createQueue(
  sqs: SQSClient,
  queue: LocalQueueDefinition,
  all: LocalQueueDefinition[],
  env: Record<string, string>,
): Promise<string> {
  const attributes = { ...queue.attributes };
  if (queue.deadLetterLogicalId) {
    const target = all.find((q) => q.logicalId === queue.deadLetterLogicalId);
    const targetUrl = target ? env[target.env] : undefined;
    if (!target || !targetUrl) {
      throw new Error(
        `${queue.logicalId}: dead-letter queue ${queue.deadLetterLogicalId} is not a queue of the template`,
      );
    }
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: targetUrl, AttributeNames: ["QueueArn"] }),
    );
    attributes.RedrivePolicy = JSON.stringify({
      deadLetterTargetArn: Attributes?.QueueArn,
      maxReceiveCount: queue.maxReceiveCount ?? 5,
    });
  }
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: queue.name, Attributes: attributes }),
  );
  if (!QueueUrl) throw new Error(`fauxqs returned no URL for ${queue.name}`);
  return QueueUrl;
}

// ---------------------------------------------------------------------------------------
// Sessions: Redis behind the bridge, else process memory

async function startSessionBackend(
  options: LocalStackOptions,
  warnings: string[],
  stops: Array<() => Promise<void>>,
): Promise<{ backend: "redis" | "memory"; env: Record<string, string> }> {
  let redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  if (!(await redisAnswers(redisUrl))) {
    const redisServer = options.noRedisServer ? undefined : findOnPath("redis-server");
    if (!redisServer) {
      warnings.push(
        `no Redis answers at ${redisUrl} and redis-server is not on the PATH: sessions are kept in process ` +
          "memory (lost on restart, not shared between processes)",
      );
      return { backend: "memory", env: {} };
    }
    const started = await startRedisServer(redisServer);
    stops.push(started.stop);
    warnings.push(`no Redis answered at ${redisUrl}: started ${redisServer} at ${started.url}`);
    redisUrl = started.url;
  }
  const token = randomBytes(24).toString("base64url");
  const bridge = await startBridge(redisUrl, token, options.ports?.redisRest ?? 0);
  stops.push(bridge.stop);
  return { backend: "redis", env: { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: token } };
}

/** True when something at the URL speaks Redis (any reply to PING, NOAUTH included). */
export function redisAnswers(redisUrl: string, timeoutMs = 500): Promise<boolean> {
  const url = new URL(redisUrl);
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname || "127.0.0.1", port: Number(url.port || 6379) });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(/^[+-]/.test(data.toString("latin1"))));
  });
}

/** The executable `command` on the PATH, or undefined. */
export function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A port free on 127.0.0.1 a moment ago (for servers that cannot take port 0, as redis-server). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedisServer(binary: string): Promise<{ url: string; stop: () => Promise<void> }> {
  // redis-server cannot take port 0, so a free port is picked first; a lost race is retried.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(
      binary,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    const url = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await redisAnswers(url, 200)) return { url, stop: () => stopChild(child) };
      await sleep(50);
    }
    lastError = new Error(`redis-server on port ${port} did not start (exit code ${child.exitCode})`);
    await stopChild(child);
  }
  throw lastError;
}

async function startBridge(
  redisUrl: string,
  token: string,
  port: number,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BRIDGE_SCRIPT], {
    env: { ...process.env, URS_TOKEN: token, REDIS_URL: redisUrl, BRIDGE_PORT: String(port) },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  try {
    const listening = await new Promise<number>((resolve, reject) => {
      let stdout = "";
      const timer = setTimeout(() => reject(new Error(`the Redis bridge did not start: ${stderr}`)), 10_000);
      child.stdout?.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
        const line = stdout.split("\n")[0];
        if (stdout.includes("\n") && line) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the Redis bridge exited (${code}): ${stderr}`));
      });
    });
    const url = `http://127.0.0.1:${listening}`;
    // One real command through the bridge, so a stack that starts is a stack that works.
    const reply = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(["PING"]),
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await reply.json()) as { result?: unknown; error?: string };
    if (body.result !== "PONG")
      throw new Error(`the Redis bridge cannot reach ${redisUrl}: ${JSON.stringify(body)}`);
    return { url, stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
  });
}

function closeHttpServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    // Idle keep-alive sockets of SDK clients would hold close() open.
    server.closeAllConnections();
    server.close((error) => (error ? reject(error) : resolve()));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
