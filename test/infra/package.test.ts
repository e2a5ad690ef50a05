/**
 * Runs the real packaging (`npm run package`: esbuild bundles, then `serverless package` from
 * osls) with no AWS credentials, and checks the wiring in the CloudFormation template it writes.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../lib/config.ts";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

type Json = Record<string, unknown>;
interface CfnResource {
  Type: string;
  Properties: Json;
  DependsOn?: string[];
}

/** Everything but AWS credentials and profiles: packaging must not need an AWS account. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE|DEFAULT_PROFILE)$/.test(key))
      env[key] = value;
  }
  env.AWS_CONFIG_FILE = path.join(root, "no-such-aws-config");
  env.AWS_SHARED_CREDENTIALS_FILE = path.join(root, "no-such-aws-credentials");
  env.AWS_EC2_METADATA_DISABLED = "true";
  return env;
}

const runOptions = () => ({ cwd: root, env: offlineEnv(), timeout: 170_000, maxBuffer: 16 * 1024 * 1024 });
const readTemplate = async (dir: string) =>
  JSON.parse(await readFile(path.join(dir, "cloudformation-template-update-stack.json"), "utf8")) as Json;

/** `npm run package`, writing the artifacts to `dir` instead of .serverless/. */
async function npmRunPackage(dir: string): Promise<Json> {
  await run("npm", ["run", "--silent", "package", "--", "--package", dir], runOptions());
  return readTemplate(dir);
}

/** `serverless package` alone, over the bundles already in dist/. */
async function serverlessPackage(dir: string, extraArgs: string[]): Promise<Json> {
  const serverless = path.join(root, "node_modules/.bin/serverless");
  await run(serverless, ["package", "--package", dir, ...extraArgs], runOptions());
  return readTemplate(dir);
}

/** File names in a zip archive, from its central directory. */
async function zipEntries(file: string): Promise<string[]> {
  const zip = await readFile(file);
  let eocd = zip.length - 22;
  while (eocd >= 0 && zip.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error(`${file} is not a zip archive`);
  const count = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error(`${file}: bad central directory`);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    names.push(zip.toString("utf8", offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}

/** A readable name for a policy resource: `ExecutionsTable`, `ExecutionsTable/index/*`, a literal ARN. */
function resourceKey(resource: unknown): string {
  if (typeof resource === "string") return resource;
  const value = resource as Json;
  if (Array.isArray(value["Fn::GetAtt"])) {
    const [logicalId, attribute] = value["Fn::GetAtt"] as [string, string];
    if (attribute !== "Arn") throw new Error(`unexpected attribute ${attribute} of ${logicalId}`);
    return logicalId;
  }
  if (typeof value.Ref === "string") return `{${value.Ref}}`;
  if (Array.isArray(value["Fn::Join"])) {
    const [separator, parts] = value["Fn::Join"] as [string, unknown[]];
    return parts.map(resourceKey).join(separator);
  }
  throw new Error(`unexpected policy resource ${JSON.stringify(resource)}`);
}

const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** Every (resource -> actions) an IAM role allows, from its inline policies. */
function grantsOf(role: CfnResource): Record<string, string[]> {
  const grants: Record<string, Set<string>> = {};
  for (const policy of (role.Properties.Policies ?? []) as Array<{ PolicyDocument: { Statement: Json[] } }>) {
    for (const statement of policy.PolicyDocument.Statement) {
      if (statement.Effect !== "Allow") continue;
      for (const resource of asArray(statement.Resource)) {
        const key = resourceKey(resource);
        grants[key] ??= new Set();
        for (const action of asArray(statement.Action as string | string[])) grants[key].add(action);
      }
    }
  }
  return Object.fromEntries(Object.entries(grants).map(([key, actions]) => [key, [...actions].sort()]));
}

const sorted = (values: string[]) => [...values].sort();
const DDB_READ = ["dynamodb:GetItem", "dynamodb:Query"];
const SQS_CONSUME = [
  "sqs:ChangeMessageVisibility",
  "sqs:DeleteMessage",
  "sqs:GetQueueAttributes",
  "sqs:ReceiveMessage",
];
const LOGS = ["logs:CreateLogStream", "logs:PutLogEvents"];
/** History records and Idempotency-Key claims (DeleteItem only under the `idem#*` condition). */
const HISTORY_AND_CLAIMS = [
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
];
/** Day buckets, per-execution claims (a claim whose merge failed is deleted), protocol registry, runs. */
const PATTERNS_RW = [...DDB_READ, "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"];

/** The service's and the tenants' secrets in SSM, read by path, decrypted through SSM only. */
const SECRETS = {
  "arn:{AWS::Partition}:ssm:{AWS::Region}:{AWS::AccountId}:parameter/mova/dev": ["ssm:GetParametersByPath"],
  "arn:{AWS::Partition}:ssm:{AWS::Region}:{AWS::AccountId}:parameter/mova/dev/tenants/*": [
    "ssm:GetParametersByPath",
  ],
};
const TRACING = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"];

/** What each function may do, and nothing more. */
const EXPECTED_GRANTS: Record<string, Record<string, string[]>> = {
  ApiRole: {
    ApiLogGroup: LOGS,
    ...SECRETS,
    "*": ["kms:Decrypt", ...TRACING],
    DocumentsTable: [...DDB_READ, "dynamodb:PutItem"],
    ExecutionsTable: HISTORY_AND_CLAIMS,
    "ExecutionsTable/index/*": ["dynamodb:Query"],
    PatternsTable: [...DDB_READ, "dynamodb:PutItem"],
    AnalysisQueue: ["sqs:SendMessage"],
    AnalysisPriorityQueue: ["sqs:SendMessage"],
    AnalysisRunQueue: ["sqs:SendMessage"],
    RunsQueue: ["sqs:SendMessage"],
  },
  AnalyzeRole: {
    AnalyzeLogGroup: LOGS,
    "*": TRACING,
    PatternsTable: PATTERNS_RW,
    AnalysisQueue: SQS_CONSUME,
    AnalysisPriorityQueue: SQS_CONSUME,
  },
  BatchAnalysisRole: {
    BatchAnalysisLogGroup: LOGS,
    "*": TRACING,
    ExecutionsTable: ["dynamodb:UpdateItem"],
    "ExecutionsTable/index/*": ["dynamodb:Query"],
    PatternsTable: PATTERNS_RW,
    AnalysisRunQueue: SQS_CONSUME,
  },
  TriggerRole: {
    TriggerLogGroup: LOGS,
    ...SECRETS,
    "*": ["kms:Decrypt", ...TRACING],
    DocumentsTable: DDB_READ,
    ExecutionsTable: HISTORY_AND_CLAIMS,
    AnalysisQueue: ["sqs:SendMessage"],
    AnalysisPriorityQueue: ["sqs:SendMessage"],
    TriggerQueue: SQS_CONSUME,
    TriggerDeadLetterQueue: ["sqs:SendMessage"],
    RunsQueue: ["sqs:SendMessage"],
  },
  RunnerRole: {
    RunnerLogGroup: LOGS,
    ...SECRETS,
    "*": ["kms:Decrypt", ...TRACING],
    DocumentsTable: DDB_READ,
    ExecutionsTable: ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    AnalysisQueue: ["sqs:SendMessage"],
    AnalysisPriorityQueue: ["sqs:SendMessage"],
    RunsQueue: ["sqs:SendMessage", ...SQS_CONSUME],
  },
  SweepRole: {
    SweepLogGroup: LOGS,
    // The service's own secrets (the Redis settings), not the tenants': it runs no step.
    "arn:{AWS::Partition}:ssm:{AWS::Region}:{AWS::AccountId}:parameter/mova/dev": ["ssm:GetParametersByPath"],
    "*": ["kms:Decrypt", ...TRACING],
    RunsQueue: ["sqs:SendMessage"],
  },
  StreamRole: {
    StreamLogGroup: LOGS,
    ExecutionsTable: ["dynamodb:GetItem"],
    // The service's own secrets (the API keys, the Redis settings), not the tenants'.
    "arn:{AWS::Partition}:ssm:{AWS::Region}:{AWS::AccountId}:parameter/mova/dev": ["ssm:GetParametersByPath"],
    "*": ["kms:Decrypt", ...TRACING],
  },
};

const FUNCTIONS = [
  { name: "api", logicalId: "ApiLambdaFunction", role: "ApiRole", bundle: "api" },
  { name: "analyze", logicalId: "AnalyzeLambdaFunction", role: "AnalyzeRole", bundle: "analyze" },
  {
    name: "batchAnalysis",
    logicalId: "BatchAnalysisLambdaFunction",
    role: "BatchAnalysisRole",
    bundle: "batch-analysis",
  },
  { name: "trigger", logicalId: "TriggerLambdaFunction", role: "TriggerRole", bundle: "trigger" },
  { name: "runner", logicalId: "RunnerLambdaFunction", role: "RunnerRole", bundle: "runner" },
  { name: "sweep", logicalId: "SweepLambdaFunction", role: "SweepRole", bundle: "sweep" },
  { name: "stream", logicalId: "StreamLambdaFunction", role: "StreamRole", bundle: "stream" },
] as const;

const getAttArn = (logicalId: string) => ({ "Fn::GetAtt": [logicalId, "Arn"] });

describe("npm run package (osls, offline)", () => {
  let outDir: string;
  let template: Json;
  let resources: Record<string, CfnResource>;
  const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);
  const props = (logicalId: string) => {
    const resource = resources[logicalId];
    if (!resource) throw new Error(`no resource ${logicalId} in the template`);
    return resource.Properties;
  };

  beforeAll(async () => {
    outDir = await mkdtemp(path.join(tmpdir(), "mova-package-"));
    template = await npmRunPackage(outDir);
    resources = template.Resources as Record<string, CfnResource>;
  }, 180_000);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("packages the six functions on nodejs24.x/arm64, each zip holding only its own bundle", async () => {
    expect(sorted(ofType("AWS::Lambda::Function").map(([id]) => id))).toEqual(
      sorted(FUNCTIONS.map((fn) => fn.logicalId)),
    );
    for (const fn of FUNCTIONS) {
      const p = props(fn.logicalId);
      expect(p.Runtime).toBe("nodejs24.x");
      expect(p.Architectures).toEqual(["arm64"]);
      expect(p.Handler).toBe(`dist/${fn.bundle}/index.handler`);
      const entries = await zipEntries(path.join(outDir, `${fn.name}.zip`));
      expect(entries).toContain(`dist/${fn.bundle}/index.mjs`);
      expect(entries.every((entry) => entry.startsWith(`dist/${fn.bundle}/`))).toBe(true);
      // The dashboard's page script ships with the API function only.
      expect(entries.includes("dist/api/dashboard.js"), fn.name).toBe(fn.name === "api");
      const logGroup = fn.logicalId.replace(/LambdaFunction$/, "LogGroup");
      expect(props(logGroup).RetentionInDays, logGroup).toBe(30);
    }
  });

  it("routes every HTTP API request (payload 2.0) to api", () => {
    const routes = ofType("AWS::ApiGatewayV2::Route").map(([, route]) => route.Properties);
    expect(routes.map((route) => route.RouteKey)).toEqual(["$default"]);
    const integration = ofType("AWS::ApiGatewayV2::Integration").map(([, resource]) => resource.Properties);
    expect(integration).toHaveLength(1);
    expect(integration[0]).toMatchObject({
      IntegrationType: "AWS_PROXY",
      PayloadFormatVersion: "2.0",
      IntegrationUri: getAttArn("ApiLambdaFunction"),
    });
  });

  it("feeds analyze from both analysis queues, and trigger from its queue, with partial batch responses", () => {
    const mappings = ofType("AWS::Lambda::EventSourceMapping").map(([, resource]) => resource.Properties);
    const bySource = (queue: string) =>
      mappings.filter((m) => JSON.stringify(m.EventSourceArn) === JSON.stringify(getAttArn(queue)));
    for (const [queue, fn] of [
      ["AnalysisPriorityQueue", "AnalyzeLambdaFunction"],
      ["AnalysisQueue", "AnalyzeLambdaFunction"],
      ["TriggerQueue", "TriggerLambdaFunction"],
    ] as const) {
      const found = bySource(queue);
      expect(found, queue).toHaveLength(1);
      expect(found[0]).toMatchObject({
        FunctionName: getAttArn(fn),
        BatchSize: 10,
        MaximumBatchingWindowInSeconds: 5,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        Enabled: true,
      });
    }
    // On-demand analysis runs: one at a time.
    const runs = bySource("AnalysisRunQueue");
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      FunctionName: getAttArn("BatchAnalysisLambdaFunction"),
      BatchSize: 1,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    // Durable runs: one run per runner invocation.
    const durable = bySource("RunsQueue");
    expect(durable).toHaveLength(1);
    expect(durable[0]).toMatchObject({
      FunctionName: getAttArn("RunnerLambdaFunction"),
      BatchSize: 1,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    expect(mappings).toHaveLength(5);
    // The ordinary queue's concurrency is capped; the priority (failures) queue's is not,
    // so a backlog of successes cannot hold failures back.
    expect(bySource("AnalysisQueue")[0]!.ScalingConfig).toEqual({ MaximumConcurrency: 5 });
    expect(bySource("AnalysisPriorityQueue")[0]!.ScalingConfig).toBeUndefined();
  });

  it("serves GET /executions/{id}/events from the stream function's URL in response-streaming mode, keys checked by the handler", () => {
    const urls = ofType("AWS::Lambda::Url").map(([, resource]) => resource.Properties);
    expect(urls).toEqual([
      {
        AuthType: "NONE",
        InvokeMode: "RESPONSE_STREAM",
        TargetFunctionArn: getAttArn("StreamLambdaFunction"),
      },
    ]);
    const permissions = ofType("AWS::Lambda::Permission")
      .map(([, resource]) => resource.Properties)
      .filter((p) => JSON.stringify(p.FunctionName).includes("StreamLambdaFunction"));
    expect(permissions.map((p) => p.Action).sort()).toEqual([
      "lambda:InvokeFunction",
      "lambda:InvokeFunctionUrl",
    ]);
    expect((template.Outputs as Json).StreamLambdaFunctionUrl).toBeDefined();
    const stream = props("StreamLambdaFunction");
    expect(stream.Timeout).toBe(900);
    // Its keys and Redis settings come from SSM at start-up, like the other functions' secrets.
    const variables = (stream.Environment as { Variables: Json }).Variables;
    expect(variables.EXECUTIONS_TABLE).toEqual({ Ref: "ExecutionsTable" });
    expect(variables.MOVA_SSM_PREFIX).toBe("/mova/dev");
    expect(variables.MOVA_API_KEYS).toBeUndefined();
    // The stream must end before the function does.
    expect(loadConfig({}).RUN_EVENTS_MAX_CONNECTION_MS).toBeLessThan((stream.Timeout as number) * 1000);
  });

  it("runs batchAnalysis on a daily schedule, the sweep every minute, and trigger on mova.run.requested events of the configured sources, each with retries and a dead-letter queue", () => {
    const rules = ofType("AWS::Events::Rule").map(([, resource]) => resource.Properties);
    const sweep = rules.filter((rule) => rule.ScheduleExpression === "rate(1 minute)");
    expect(sweep).toHaveLength(1);
    expect(sweep[0]).toMatchObject({ State: "ENABLED" });
    expect((sweep[0]!.Targets as Json[])[0]!.Arn).toEqual(getAttArn("SweepLambdaFunction"));
    const schedule = rules.filter(
      (rule) => rule.ScheduleExpression !== undefined && rule.ScheduleExpression !== "rate(1 minute)",
    );
    expect(schedule).toHaveLength(1);
    expect(schedule[0]).toMatchObject({ ScheduleExpression: "rate(1 day)", State: "ENABLED" });
    expect((schedule[0]!.Targets as Json[])[0]).toMatchObject({
      Arn: getAttArn("BatchAnalysisLambdaFunction"),
      RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
      DeadLetterConfig: { Arn: getAttArn("ScheduleDeadLetterQueue") },
    });

    const events = rules.filter((rule) => rule.EventPattern !== undefined);
    expect(events).toHaveLength(1);
    // No source configured: a source nothing sends, so the rule matches nothing.
    expect(events[0]!.EventPattern).toEqual({
      source: { "Fn::Split": [",", "mova.none"] },
      "detail-type": ["mova.run.requested"],
    });
    expect((events[0]!.Targets as Json[])[0]).toMatchObject({
      Arn: getAttArn("TriggerLambdaFunction"),
      RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
      DeadLetterConfig: { Arn: getAttArn("TriggerDeadLetterQueue") },
    });
    // Only the rules may put dead letters in those queues.
    const queuePolicy = ofType("AWS::SQS::QueuePolicy").map(([, resource]) => resource.Properties);
    expect(queuePolicy).toHaveLength(1);
    const statements = (queuePolicy[0]!.PolicyDocument as { Statement: Json[] }).Statement;
    expect(statements.map((statement) => (statement.Condition as Json).ArnEquals)).toEqual([
      { "aws:SourceArn": getAttArn("AnalysisScheduleRule") },
      { "aws:SourceArn": getAttArn("TriggerEventRule") },
    ]);

    // A run request that fails every async attempt lands in the trigger dead-letter queue.
    const invokeConfigs = ofType("AWS::Lambda::EventInvokeConfig").map(([, resource]) => resource.Properties);
    expect(invokeConfigs).toEqual([
      expect.objectContaining({
        FunctionName: { Ref: "TriggerLambdaFunction" },
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: getAttArn("TriggerDeadLetterQueue") } },
      }),
    ]);

    const permissions = ofType("AWS::Lambda::Permission").map(([, resource]) => resource.Properties);
    for (const fn of ["BatchAnalysisLambdaFunction", "TriggerLambdaFunction"]) {
      expect(
        permissions.some(
          (p) => p.Principal === "events.amazonaws.com" && JSON.stringify(p.FunctionName).includes(fn),
        ),
        fn,
      ).toBe(true);
    }
  });

  it("makes the schedule configurable with --param analysisSchedule", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "mova-package-"));
    try {
      // The bundles from beforeAll are reused: only the template changes.
      const other = await serverlessPackage(dir, ["--param=analysisSchedule=rate(6 hours)"]);
      const rules = Object.values(other.Resources as Record<string, CfnResource>).filter(
        (resource) => resource.Type === "AWS::Events::Rule" && resource.Properties.ScheduleExpression,
      );
      expect(rules.map((rule) => rule.Properties.ScheduleExpression).sort()).toEqual([
        "rate(1 minute)",
        "rate(6 hours)",
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("creates the tables on demand, with point-in-time recovery, encryption, TTL and the time indexes", () => {
    for (const table of ["DocumentsTable", "ExecutionsTable", "PatternsTable"]) {
      const p = props(table);
      expect(p.BillingMode, table).toBe("PAY_PER_REQUEST");
      expect(p.PointInTimeRecoverySpecification, table).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(p.SSESpecification, table).toEqual({ SSEEnabled: true });
      expect(p.KeySchema, table).toEqual([
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ]);
      expect(p.TableName, table).toMatch(/^mova-dev-/);
    }
    expect(props("ExecutionsTable").TimeToLiveSpecification).toEqual({ AttributeName: "ttl", Enabled: true });
    expect(props("PatternsTable").TimeToLiveSpecification).toEqual({ AttributeName: "ttl", Enabled: true });
    expect(props("DocumentsTable").TimeToLiveSpecification).toBeUndefined();
    const indexes = props("ExecutionsTable").GlobalSecondaryIndexes as Json[];
    expect(indexes).toEqual([
      {
        IndexName: "byProtocolTime",
        KeySchema: [
          { AttributeName: "gsi1pk", KeyType: "HASH" },
          { AttributeName: "gsi1sk", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      },
      {
        IndexName: "byDay",
        KeySchema: [
          { AttributeName: "gsi2pk", KeyType: "HASH" },
          { AttributeName: "gsi2sk", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      },
    ]);
  });

  it("redrives the queues to their dead-letter queues after 5 receives, with visibility >= 6x the consumer's timeout", () => {
    const analyzeTimeout = props("AnalyzeLambdaFunction").Timeout as number;
    const triggerTimeout = props("TriggerLambdaFunction").Timeout as number;
    for (const [queue, dlq, timeout] of [
      ["AnalysisQueue", "AnalysisDeadLetterQueue", analyzeTimeout],
      ["AnalysisPriorityQueue", "AnalysisDeadLetterQueue", analyzeTimeout],
      ["TriggerQueue", "TriggerDeadLetterQueue", triggerTimeout],
    ] as const) {
      const p = props(queue);
      expect(p.RedrivePolicy, queue).toEqual({ deadLetterTargetArn: getAttArn(dlq), maxReceiveCount: 5 });
      expect(p.VisibilityTimeout as number, queue).toBeGreaterThanOrEqual(6 * timeout);
    }
    for (const dlq of ["AnalysisDeadLetterQueue", "TriggerDeadLetterQueue"]) {
      expect(props(dlq).MessageRetentionPeriod, dlq).toBe(14 * 24 * 3600);
      expect(props(dlq).RedrivePolicy, dlq).toBeUndefined();
    }
    const batchTimeout = props("BatchAnalysisLambdaFunction").Timeout as number;
    const runQueue = props("AnalysisRunQueue");
    expect(runQueue.RedrivePolicy).toEqual({
      deadLetterTargetArn: getAttArn("AnalysisDeadLetterQueue"),
      maxReceiveCount: 3,
    });
    expect(runQueue.VisibilityTimeout as number).toBeGreaterThanOrEqual(6 * batchTimeout);
    const runnerTimeout = props("RunnerLambdaFunction").Timeout as number;
    expect(props("RunsQueue").RedrivePolicy).toEqual({
      deadLetterTargetArn: getAttArn("RunsDeadLetterQueue"),
      maxReceiveCount: 10,
    });
    expect(props("RunsQueue").VisibilityTimeout as number).toBeGreaterThanOrEqual(6 * runnerTimeout);
    expect(props("RunsDeadLetterQueue").MessageRetentionPeriod).toBe(14 * 24 * 3600);
    // The schedule's undeliverable invocations (infra/operations.yml).
    expect(props("ScheduleDeadLetterQueue").MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(ofType("AWS::SQS::Queue")).toHaveLength(9);
  });

  it("alarms when a dead-letter queue holds a message and when a function errors", () => {
    const alarms = ofType("AWS::CloudWatch::Alarm").map(([, resource]) => resource.Properties);
    const alarmOn = (metric: string, dimension: unknown) =>
      alarms.filter(
        (a) =>
          a.MetricName === metric &&
          JSON.stringify((a.Dimensions as Json[]).map((d) => d.Value)) === JSON.stringify([dimension]),
      );
    for (const dlq of ["AnalysisDeadLetterQueue", "TriggerDeadLetterQueue", "RunsDeadLetterQueue"]) {
      const found = alarmOn("ApproximateNumberOfMessagesVisible", { "Fn::GetAtt": [dlq, "QueueName"] });
      expect(found, dlq).toHaveLength(1);
      expect(found[0]).toMatchObject({
        Namespace: "AWS/SQS",
        Threshold: 0,
        ComparisonOperator: "GreaterThanThreshold",
      });
    }
    for (const fn of FUNCTIONS) {
      const found = alarmOn("Errors", { Ref: fn.logicalId });
      expect(found, fn.name).toHaveLength(1);
      expect(found[0]).toMatchObject({
        Namespace: "AWS/Lambda",
        Threshold: 0,
        ComparisonOperator: "GreaterThanThreshold",
      });
    }
    for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([{ Ref: "AlarmTopic" }]);
  });

  it("gives each function its own role, granting exactly its listed actions on its resources", () => {
    expect(sorted(ofType("AWS::IAM::Role").map(([id]) => id))).toEqual(
      sorted(FUNCTIONS.map((fn) => fn.role)),
    );
    for (const fn of FUNCTIONS) {
      expect(props(fn.logicalId).Role, fn.name).toEqual(getAttArn(fn.role));
      const role = resources[fn.role]!;
      expect(role.Properties.ManagedPolicyArns, fn.role).toBeUndefined();
      const expected = Object.fromEntries(
        Object.entries(EXPECTED_GRANTS[fn.role]!).map(([resource, actions]) => [resource, sorted(actions)]),
      );
      expect(grantsOf(role), fn.role).toEqual(expected);
    }
  });

  it("keeps consumers and producers apart: no reads of queues one only writes, no document writes outside api", () => {
    const grants = Object.fromEntries(FUNCTIONS.map((fn) => [fn.name, grantsOf(resources[fn.role]!)]));
    const all = (name: string) => Object.values(grants[name]!).flat();
    expect(all("api")).not.toContain("sqs:ReceiveMessage");
    // batchAnalysis consumes its run queue only; it publishes nothing.
    expect(all("batchAnalysis")).not.toContain("sqs:SendMessage");
    expect(Object.keys(grants.batchAnalysis!).filter((resource) => resource.endsWith("Queue"))).toEqual([
      "AnalysisRunQueue",
    ]);
    for (const name of ["analyze", "batchAnalysis", "trigger", "runner"]) {
      const onDocuments = grants[name]!.DocumentsTable ?? [];
      expect(
        onDocuments.filter((action) => !["dynamodb:GetItem", "dynamodb:Query"].includes(action)),
        name,
      ).toEqual([]);
    }
    for (const actions of Object.values(grants).flatMap((g) => Object.values(g))) {
      expect(actions.some((action) => action.includes("*"))).toBe(false);
    }
  });

  it("grants no DynamoDB or SQS operation that the function's bundle cannot call", async () => {
    // The bundles are tree-shaken: an SDK command the code never imports is not in them, and
    // each command names its operation as a string literal. A bundle is index.mjs and its chunks.
    for (const fn of FUNCTIONS) {
      const dir = path.join(root, "dist", fn.bundle);
      const files = (await readdir(dir)).filter((file) => file.endsWith(".mjs"));
      expect(files).toContain("index.mjs");
      const bundle = (await Promise.all(files.map((file) => readFile(path.join(dir, file), "utf8")))).join(
        "\n",
      );
      const granted = new Set(
        Object.values(grantsOf(resources[fn.role]!))
          .flat()
          .filter((action) => /^(dynamodb|sqs):/.test(action)),
      );
      for (const action of granted) {
        if (SQS_CONSUME.includes(action)) continue; // Lambda's poller uses them, with this role
        const operation = action.slice(action.indexOf(":") + 1);
        expect(bundle.includes(`"${operation}"`), `${fn.name} is granted ${action}`).toBe(true);
      }
    }
  });

  it("deletes nothing in the history but Idempotency-Key claims; only the analysis deletes patterns", () => {
    const statements = FUNCTIONS.flatMap((fn) =>
      (resources[fn.role]!.Properties.Policies as Array<{ PolicyDocument: { Statement: Json[] } }>).flatMap(
        (policy) => policy.PolicyDocument.Statement.map((statement) => ({ fn: fn.name, statement })),
      ),
    );
    const deleting = statements.filter(({ statement }) =>
      asArray(statement.Action as string | string[]).some((action) =>
        /^dynamodb:(DeleteItem|BatchWriteItem)$/.test(action),
      ),
    );
    for (const { fn, statement } of deleting) {
      const onPatternsOnly = asArray(statement.Resource).every((r) => resourceKey(r) === "PatternsTable");
      if (onPatternsOnly && fn !== "api" && fn !== "trigger") continue; // the analysis owns its patterns
      expect(statement.Condition, `${fn} ${statement.Sid}`).toEqual({
        "ForAllValues:StringLike": { "dynamodb:LeadingKeys": ["idem#*"] },
      });
      expect(asArray(statement.Resource).map(resourceKey), `${fn} ${statement.Sid}`).toEqual([
        "ExecutionsTable",
      ]);
    }
    expect(
      deleting
        .filter(({ statement }) => statement.Condition)
        .map(({ fn }) => fn)
        .sort(),
    ).toEqual(["api", "trigger"]);
  });

  it("sets the environment the config module reads, with no secret in it (SSM paths only)", () => {
    const secrets = ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "LLM_API_KEY", "MOVA_API_KEYS"];
    for (const fn of FUNCTIONS) {
      const variables = (props(fn.logicalId).Environment as { Variables: Json }).Variables;
      expect(variables.DOCUMENTS_TABLE).toEqual({ Ref: "DocumentsTable" });
      expect(variables.EXECUTIONS_TABLE).toEqual({ Ref: "ExecutionsTable" });
      expect(variables.PATTERNS_TABLE).toEqual({ Ref: "PatternsTable" });
      expect(variables.ANALYSIS_QUEUE_URL).toEqual({ Ref: "AnalysisQueue" });
      expect(variables.ANALYSIS_PRIORITY_QUEUE_URL).toEqual({ Ref: "AnalysisPriorityQueue" });
      for (const name of secrets) expect(variables[name], `${fn.name} ${name}`).toBeUndefined();
      expect(variables.MOVA_SSM_PREFIX).toBe("/mova/dev");
      expect(variables.SECRETS_SSM_PATH).toBe("/mova/dev/tenants");
      expect(variables.PUBLIC_API_URL).toEqual({ "Fn::GetAtt": ["HttpApi", "ApiEndpoint"] });
      // Stand in for what CloudFormation substitutes, then let the real config module judge it.
      const resolved = Object.fromEntries(
        Object.entries(variables).map(([key, value]) => [
          key,
          typeof value === "string"
            ? value
            : key === "PUBLIC_API_URL"
              ? "https://abc123.execute-api.eu-west-1.amazonaws.com"
              : `resolved-${key}`,
        ]),
      );
      expect(() => loadConfig(resolved), fn.name).not.toThrow();
      expect(loadConfig(resolved).SESSION_TTL_SECONDS).toBe(3600);
      expect(loadConfig(resolved).HISTORY_RETENTION_DAYS).toBe(90);
    }
    const envOf = (logicalId: string) => (props(logicalId).Environment as { Variables: Json }).Variables;
    expect(envOf("TriggerLambdaFunction").RUNS_QUEUE_URL).toEqual({ Ref: "RunsQueue" });
    expect(envOf("ApiLambdaFunction").RUNS_QUEUE_URL).toEqual({ Ref: "RunsQueue" });
    expect(envOf("ApiLambdaFunction").CORS_ALLOWED_ORIGINS).toBe("");
    expect(envOf("TriggerLambdaFunction").TRIGGER_SOURCES).toBe("");
    expect(JSON.stringify(template)).not.toMatch(/"LLM_BASE_URL":""/);
    expect(JSON.stringify(template)).not.toContain("resolve:ssm");
  });

  it("reserves concurrency for the functions that call the LLM, runs one batch analysis at a time, and traces every function", () => {
    expect(props("ApiLambdaFunction").ReservedConcurrentExecutions).toBe(20);
    expect(props("TriggerLambdaFunction").ReservedConcurrentExecutions).toBe(5);
    expect(props("RunnerLambdaFunction").ReservedConcurrentExecutions).toBe(10);
    expect(props("BatchAnalysisLambdaFunction").ReservedConcurrentExecutions).toBe(1);
    for (const fn of FUNCTIONS)
      expect(props(fn.logicalId).TracingConfig, fn.name).toEqual({ Mode: "Active" });
  });

  it("throttles the API's stage and writes its access logs", () => {
    expect(props("HttpApiStage")).toMatchObject({
      DefaultRouteSettings: { ThrottlingRateLimit: "50", ThrottlingBurstLimit: "100" },
      AccessLogSettings: { DestinationArn: getAttArn("HttpApiLogGroup") },
    });
  });

  it("alarms on API 5xx, handled 5xx, throttles, queue age and every dead-letter queue, all to the alarm topic", () => {
    const alarms = Object.fromEntries(ofType("AWS::CloudWatch::Alarm").map(([id, r]) => [id, r.Properties]));
    expect(alarms.Api5xxAlarm).toMatchObject({
      Namespace: "AWS/ApiGateway",
      MetricName: "5xx",
      Dimensions: [{ Name: "ApiId", Value: { Ref: "HttpApi" } }],
    });
    // The API's own EMF metric (lib/wiring/api.ts): a 503 is no Lambda error.
    expect(alarms.HandledServerErrorsAlarm).toMatchObject({
      Namespace: "Mova",
      MetricName: "HandledServerErrors",
      Dimensions: [{ Name: "service", Value: "mova-api" }],
    });
    for (const fn of ["Api", "Trigger", "Runner"]) {
      expect(alarms[`${fn}ThrottlesAlarm`], fn).toMatchObject({
        Namespace: "AWS/Lambda",
        MetricName: "Throttles",
        Dimensions: [{ Name: "FunctionName", Value: { Ref: `${fn}LambdaFunction` } }],
        Threshold: 0,
      });
    }
    for (const queue of [
      "AnalysisQueue",
      "AnalysisPriorityQueue",
      "AnalysisRunQueue",
      "TriggerQueue",
      "RunsQueue",
    ]) {
      expect(alarms[`${queue}AgeAlarm`], queue).toMatchObject({
        Namespace: "AWS/SQS",
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [queue, "QueueName"] } }],
        Threshold: "1800",
      });
    }
    expect(alarms.ScheduleDeadLetterQueueAlarm).toMatchObject({
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": ["ScheduleDeadLetterQueue", "QueueName"] } }],
    });
    for (const [id, alarm] of Object.entries(alarms))
      expect(alarm.AlarmActions, id).toEqual([{ Ref: "AlarmTopic" }]);
    // No address given: the subscription's condition is false.
    expect(resources.AlarmEmailSubscription).toMatchObject({ Condition: "HasAlarmEmail" });
    expect((template.Conditions as Json).HasAlarmEmail).toEqual({ "Fn::Not": [{ "Fn::Equals": ["", ""] }] });
  });

  it("subscribes --param alarmEmail to the alarms and listens to the --param triggerSources", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "mova-package-"));
    try {
      const other = await serverlessPackage(dir, [
        "--param=alarmEmail=ops@example.com",
        "--param=triggerSources=com.acme.orders,com.globex.billing",
        "--param=triggerSourceTenants=com.acme.orders=acme,com.globex.billing=globex",
        "--param=corsAllowedOrigins=https://app.example.com",
      ]);
      const found = other.Resources as Record<string, CfnResource>;
      expect(found.AlarmEmailSubscription!.Properties).toEqual({
        TopicArn: { Ref: "AlarmTopic" },
        Protocol: "email",
        Endpoint: "ops@example.com",
      });
      expect((other.Conditions as Json).HasAlarmEmail).toEqual({
        "Fn::Not": [{ "Fn::Equals": ["ops@example.com", ""] }],
      });
      expect((found.TriggerEventRule!.Properties.EventPattern as Json).source).toEqual({
        "Fn::Split": [",", "com.acme.orders,com.globex.billing"],
      });
      const env = (id: string) => (found[id]!.Properties.Environment as { Variables: Json }).Variables;
      expect(env("TriggerLambdaFunction").TRIGGER_SOURCES).toBe(
        "com.acme.orders=acme,com.globex.billing=globex",
      );
      expect(env("ApiLambdaFunction").CORS_ALLOWED_ORIGINS).toBe("https://app.example.com");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("has no cfn-lint errors, where cfn-lint is installed (its warnings are Serverless's own DependsOn)", async () => {
    const lint = await run("cfn-lint", ["--version"]).then(
      () => true,
      () => false,
    );
    if (!lint) return;
    const file = path.join(outDir, "cloudformation-template-update-stack.json");
    const result = await run("cfn-lint", ["--format", "parseable", file]).then(
      () => "",
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    const errors = result.split("\n").filter((line) => /:E\d{4}:/.test(line));
    expect(errors).toEqual([]);
  }, 120_000);

  it("deploys through `npm run deploy`, which builds first", async () => {
    const scripts = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")).scripts as Record<
      string,
      string
    >;
    expect(scripts.deploy).toBe("tsx scripts/build.ts && serverless deploy");
  });

  it("deploys infra/resources.yml as written: Serverless only fills in the names", async () => {
    const source = parse(await readFile(path.join(root, "infra/resources.yml"), "utf8")) as {
      Resources: Record<string, CfnResource>;
    };
    const nameKeys = ["TableName", "QueueName", "TopicName", "AlarmName"];
    const withoutNames = (resource: CfnResource) => ({
      ...resource,
      Properties: Object.fromEntries(
        Object.entries(resource.Properties).filter(([key]) => !nameKeys.includes(key)),
      ),
    });
    for (const [logicalId, resource] of Object.entries(source.Resources)) {
      expect(resources[logicalId], logicalId).toBeDefined();
      expect(withoutNames(resources[logicalId]!), logicalId).toEqual(withoutNames(resource));
      for (const key of nameKeys) {
        const name = resources[logicalId]!.Properties[key];
        if (name !== undefined) expect(name, `${logicalId}.${key}`).toMatch(/^mova-dev-[a-z0-9-]+$/);
      }
    }
  });
});
