/**
 * The trigger takes a run's tenant from its configuration (TRIGGER_SOURCES, source=tenant),
 * never from the event: an event from an unlisted source, or naming another tenant, runs
 * nothing. Against the local stack and a fake OpenAI-compatible server on loopback.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import type { EventBridgeEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { loadConfig } from "../../lib/config.ts";
import { isMovaError } from "../../lib/errors.ts";
import { parseSourceTenants, type TriggerHandler } from "../../lib/services/triggers.ts";
import { buildRuntimeDeps } from "../../lib/wiring/runtime.ts";
import { buildTriggerHandler } from "../../lib/wiring/trigger.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";
import { uniqueTenant } from "../support/runtime-fixtures.ts";

let stack: LocalStack;
let llm: FakeOpenAi;
let handler: TriggerHandler;
const acme = uniqueTenant("acme");
const globex = uniqueTenant("globex");
const quiet = () => new Logger({ serviceName: "mova-trigger-sources-test", logLevel: "SILENT" });

const document = {
  version: "2.2",
  protocols: [{ name: "p", steps: [{ id: "end", action: "end", response_template: "ran" }] }],
};

const event = (source: string, detail: unknown): EventBridgeEvent<string, unknown> => ({
  version: "0",
  id: `evt-${Math.random().toString(36).slice(2)}`,
  "detail-type": "mova.run.requested",
  source,
  account: "123456789012",
  time: new Date().toISOString(),
  region: "eu-west-1",
  resources: [],
  detail,
});

beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
  llm = await startFakeOpenAi();
  const env = {
    ...stack.env,
    LLM_API_KEY: "sk-test",
    LLM_BASE_URL: llm.baseURL,
    LOG_LEVEL: "SILENT",
    TRIGGER_SOURCES: `com.acme.orders=${acme}, com.globex.billing=${globex}`,
  };
  const config = loadConfig(env);
  const deps = buildRuntimeDeps(config, { env, logger: quiet() });
  await deps.documents.put(acme, "doc", document);
  await deps.documents.put(globex, "doc", document);
  handler = buildTriggerHandler(config, { env, logger: quiet() });
});
afterAll(async () => {
  await llm?.close();
  await stack?.stop();
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("trigger sources", () => {
  it("runs an event of a listed source as the source's tenant, with or without a tenant in the detail", async () => {
    const ran = await handler(event("com.acme.orders", { document: "doc", protocol: "p" }));
    expect(ran).toMatchObject({ state: "ran", status: "completed" });
    const named = await handler(event("com.acme.orders", { tenant: acme, document: "doc", protocol: "p" }));
    expect(named).toMatchObject({ state: "ran" });
  });

  it("runs nothing for an unlisted source, or for a source naming another tenant", async () => {
    const unlisted = await rejection(
      handler(event("attacker.events", { tenant: acme, document: "doc", protocol: "p" })),
    );
    expect(isMovaError(unlisted, "untrusted_source")).toBe(true);
    const impersonated = await rejection(
      handler(event("com.globex.billing", { tenant: acme, document: "doc", protocol: "p" })),
    );
    expect(isMovaError(impersonated, "tenant_mismatch")).toBe(true);
  });

  it("applies to EventBridge envelopes that arrive through the trigger queue too", async () => {
    const body = JSON.stringify(event("attacker.events", { tenant: acme, document: "doc", protocol: "p" }));
    const result = await handler({
      Records: [
        {
          messageId: "m1",
          receiptHandle: "r",
          body,
          attributes: {} as never,
          messageAttributes: {},
          md5OfBody: "",
          eventSource: "aws:sqs",
          eventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:q",
          awsRegion: "eu-west-1",
        },
      ],
    });
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: "m1" }] });
  });

  it("refuses a malformed TRIGGER_SOURCES entry", () => {
    expect(() => parseSourceTenants(["com.acme.orders"])).toThrow(/source=tenant/);
    expect(parseSourceTenants([]).size).toBe(0);
  });
});
