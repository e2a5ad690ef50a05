/**
 * lib/services/idempotency.ts (Powertools idempotency on the executions table) against dynalite,
 * the table created from infra/resources.yml: replay, tenants and scopes, in progress, another
 * request, release on failure, an expired claim taken over, large responses, DynamoDB down.
 */
import { randomBytes } from "node:crypto";
import { type DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { Logger } from "@aws-lambda-powertools/logger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { loadConfig } from "../../lib/config.ts";
import { createDynamoDbClient } from "../../lib/adapters/aws-clients.ts";
import { MovaError, StoreUnavailableError } from "../../lib/errors.ts";
import { createDynamoIdempotency, MAX_STORED_BYTES } from "../../lib/adapters/dynamodb/idempotency.ts";
import type { Idempotency, IdempotentRequest, IdempotentResponse } from "../../lib/ports.ts";
import { uniqueTenant } from "../support/runtime-fixtures.ts";

let stack: LocalStack;
let client: DynamoDBClient;
let table: string;
let idempotency: Idempotency;

const logger = new Logger({ serviceName: "mova-idempotency-test", logLevel: "SILENT" });

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
  client = createDynamoDbClient(loadConfig(stack.env), { env: stack.env });
  table = stack.env.EXECUTIONS_TABLE!;
  idempotency = createDynamoIdempotency({ client, tableName: table, lockMs: 60_000 });
});

afterAll(async () => {
  client?.destroy();
  await stack?.stop();
});

/** A run that counts its calls and answers `body`. */
function counted(body: unknown = { executionId: "ex_1", status: "completed" }) {
  const work = async (): Promise<IdempotentResponse> => {
    work.calls++;
    return { status: 200, body };
  };
  work.calls = 0;
  return work;
}

/** A run that stays in progress until released. */
function held(response: IdempotentResponse = { status: 200, body: { executionId: "ex_held" } }) {
  let release!: () => void;
  let onStart!: () => void;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  const started = new Promise<void>((resolve) => {
    onStart = resolve;
  });
  const work = async (): Promise<IdempotentResponse> => {
    onStart();
    await done;
    return response;
  };
  return { work, started, release };
}

const request = (
  tenant: string,
  key: string,
  overrides: Partial<IdempotentRequest> = {},
): IdempotentRequest => ({
  scope: "api",
  tenant,
  key,
  request: { document: "shop", protocol: "echo", variables: { word: "hi" } },
  ...overrides,
});

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

describe("createDynamoIdempotency", () => {
  it("runs a key once and replays its response to a retry with the same request in any key order", async () => {
    const tenant = uniqueTenant("replay");
    const body = { executionId: "ex_1", status: "completed", output: "héllo" };
    const work = counted(body);
    const first = await idempotency.run(request(tenant, "k1"), work, logger);
    expect(first).toEqual({ replayed: false, response: { status: 200, body } });
    const retry = await idempotency.run(
      request(tenant, "k1", { request: { variables: { word: "hi" }, protocol: "echo", document: "shop" } }),
      work,
      logger,
    );
    expect(retry).toEqual({ replayed: true, response: first.response });
    expect(work.calls).toBe(1);
  });

  it("keeps the record under the tenant's partition, hashed, with a TTL and no raw key", async () => {
    const tenant = uniqueTenant("shape#with#hashes");
    await idempotency.run(request(tenant, "secret-key-123"), counted(), logger);
    const items = await client.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": { S: `idem#${encodeURIComponent(tenant)}` } },
      }),
    );
    expect(items.Items).toHaveLength(1);
    const item = items.Items![0]!;
    expect(item.sk!.S).toMatch(/^api#[A-Za-z0-9+/]{43}=$/);
    expect(item.status!.S).toBe("COMPLETED");
    expect(Number(item.ttl!.N)).toBeGreaterThan(Date.now() / 1000 + 23 * 3600);
    expect(JSON.stringify(item)).not.toContain("secret-key-123");
  });

  it("never lets two tenants' (or the API's and the trigger's) same key meet", async () => {
    const [a, b] = [uniqueTenant("a"), uniqueTenant("b")];
    const work = counted();
    const ranA = await idempotency.run(request(a, "shared"), work, logger);
    const ranB = await idempotency.run(request(b, "shared"), work, logger);
    const trigger = await idempotency.run(request(a, "shared", { scope: "trigger" }), work, logger);
    expect([ranA.replayed, ranB.replayed, trigger.replayed]).toEqual([false, false, false]);
    expect(work.calls).toBe(3);
    // Another request with the key in tenant B is B's business only: A still replays.
    const otherInB = await rejection(
      idempotency.run(request(b, "shared", { request: { other: true } }), work, logger),
    );
    expect(otherInB).toMatchObject({ code: "idempotency_key_reused" });
    expect((await idempotency.run(request(a, "shared"), work, logger)).replayed).toBe(true);
    expect(work.calls).toBe(3);
  });

  it("answers in progress to a duplicate while the first runs, and key reused to another request", async () => {
    const tenant = uniqueTenant("progress");
    const first = held();
    const running = idempotency.run(request(tenant, "k2"), first.work, logger);
    await first.started;
    const duplicate = counted();
    const busy = await rejection(idempotency.run(request(tenant, "k2"), duplicate, logger));
    expect(busy).toBeInstanceOf(MovaError);
    expect(busy).toMatchObject({ code: "idempotency_in_progress", retryable: true });
    const other = await rejection(
      idempotency.run(
        request(tenant, "k2", { request: { variables: { word: "other" } } }),
        duplicate,
        logger,
      ),
    );
    expect(other).toMatchObject({ code: "idempotency_key_reused", retryable: false });
    expect(duplicate.calls).toBe(0);

    first.release();
    expect((await running).replayed).toBe(false);
    const after = await idempotency.run(request(tenant, "k2"), duplicate, logger);
    expect(after).toEqual({ replayed: true, response: { status: 200, body: { executionId: "ex_held" } } });
    const otherAfter = await rejection(
      idempotency.run(
        request(tenant, "k2", { request: { variables: { word: "other" } } }),
        duplicate,
        logger,
      ),
    );
    expect(otherAfter).toMatchObject({ code: "idempotency_key_reused" });
    expect(duplicate.calls).toBe(0);
  });

  it("gives the key back when the run throws, with the run's own error, so a retry runs", async () => {
    const tenant = uniqueTenant("fails");
    const failure = new Error("document not found");
    const thrown = await rejection(
      idempotency.run(
        request(tenant, "k3"),
        async () => {
          throw failure;
        },
        logger,
      ),
    );
    expect(thrown).toBe(failure);
    const retry = counted();
    expect((await idempotency.run(request(tenant, "k3"), retry, logger)).replayed).toBe(false);
    expect(retry.calls).toBe(1);
  });

  it("gives the key back when a deeply nested request fails, so a retry runs instead of meeting 'in progress'", async () => {
    const tenant = uniqueTenant("deep");
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 2_600; i++) deep = { next: deep };
    const deepRequest = { ...request(tenant, "k-deep"), request: { variables: deep } };
    const failure = new RangeError("Maximum call stack size exceeded");
    const thrown = await rejection(
      idempotency.run(
        deepRequest,
        async () => {
          throw failure;
        },
        logger,
      ),
    );
    expect(thrown).toBe(failure);
    const retry = counted();
    expect((await idempotency.run(deepRequest, retry, logger)).replayed).toBe(false);
    expect(retry.calls).toBe(1);
  });

  it("lets another request take over a claim whose holder died, once its lock expired", async () => {
    const shortLock = createDynamoIdempotency({ client, tableName: table, lockMs: 300 });
    const tenant = uniqueTenant("takeover");
    const dead = held();
    void shortLock.run(request(tenant, "k4"), dead.work, logger);
    await dead.started;
    const next = counted({ executionId: "ex_next" });
    expect(await rejection(shortLock.run(request(tenant, "k4"), next, logger))).toMatchObject({
      code: "idempotency_in_progress",
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const taken = await shortLock.run(request(tenant, "k4"), next, logger);
    expect(taken).toEqual({ replayed: false, response: { status: 200, body: { executionId: "ex_next" } } });
    expect(next.calls).toBe(1);
    expect((await shortLock.run(request(tenant, "k4"), next, logger)).replayed).toBe(true);
    dead.release();
  });

  it("stores a large response gzipped and replays it whole; one too large even so replays its summary", async () => {
    const tenant = uniqueTenant("large");
    const big = { executionId: "ex_big", status: "completed", output: "x".repeat(MAX_STORED_BYTES * 2) };
    const first = await idempotency.run(request(tenant, "big"), counted(big), logger);
    expect(first.response.body).toEqual(big);
    expect((await idempotency.run(request(tenant, "big"), counted(), logger)).response.body).toEqual(big);

    // Random bytes do not compress: over the limit, only what identifies the run is kept.
    const huge = {
      executionId: "ex_huge",
      status: "completed",
      output: randomBytes(400_000).toString("hex"),
    };
    const answered = await idempotency.run(request(tenant, "huge"), counted(huge), logger);
    expect(answered).toEqual({ replayed: false, response: { status: 200, body: huge } });
    const replay = await idempotency.run(request(tenant, "huge"), counted(), logger);
    expect(replay).toEqual({
      replayed: true,
      response: { status: 200, body: { executionId: "ex_huge", status: "completed", truncated: true } },
    });
  });

  it("reports DynamoDB unreachable as StoreUnavailableError history_unavailable, without running", async () => {
    const dead = createDynamoDbClient(loadConfig(stack.env), {
      env: { ...stack.env, AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9" },
      maxAttempts: 1,
    });
    const down = createDynamoIdempotency({ client: dead, tableName: table, lockMs: 60_000 });
    const work = counted();
    const error = await rejection(down.run(request(uniqueTenant("down"), "k5"), work, logger));
    dead.destroy();
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ code: "history_unavailable" });
    expect(work.calls).toBe(0);
  });

  it("answers a run whose completion could not be stored, and throws the run's error when the release fails", async () => {
    // A client on the same table whose UpdateItem (completion) and DeleteItem (release) fail.
    const flaky = createDynamoDbClient(loadConfig(stack.env), { env: stack.env, maxAttempts: 1 });
    flaky.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "UpdateItemCommand" || context.commandName === "DeleteItemCommand") {
          throw Object.assign(new Error("connect ECONNREFUSED"), { name: "TimeoutError" });
        }
        return next(args);
      },
      { step: "initialize" },
    );
    const warnings: string[] = [];
    const recording = { warn: (message: string) => warnings.push(message) } as unknown as Logger;
    const store = createDynamoIdempotency({ client: flaky, tableName: table, lockMs: 60_000 });
    const tenant = uniqueTenant("flaky");

    const answered = await store.run(request(tenant, "k6"), counted({ executionId: "ex_6" }), recording);
    expect(answered).toEqual({ replayed: false, response: { status: 200, body: { executionId: "ex_6" } } });
    // The claim stays until its lock expires: a retry is not run again meanwhile.
    expect(await rejection(idempotency.run(request(tenant, "k6"), counted(), logger))).toMatchObject({
      code: "idempotency_in_progress",
    });

    const failure = new Error("the run failed");
    const thrown = await rejection(
      store.run(
        request(tenant, "k7"),
        async () => {
          throw failure;
        },
        recording,
      ),
    );
    expect(thrown).toBe(failure);
    expect(warnings).toEqual(["idempotency completion not stored", "idempotency release failed"]);
    flaky.destroy();
  });
});
