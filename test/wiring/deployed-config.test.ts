import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMovaError } from "../../lib/errors.ts";
import { loadDeployedConfig } from "../../lib/wiring/deployed-config.ts";
import { type SsmDouble, startSsmDouble } from "../support/ssm-double.ts";

let ssm: SsmDouble;
beforeAll(async () => {
  ssm = await startSsmDouble({
    "/mova/prod/upstash-redis-rest-url": "https://eu1.upstash.example",
    "/mova/prod/upstash-redis-rest-token": "upstash-token",
    "/mova/prod/llm-api-key": "sk-live",
    "/mova/prod/api-keys": `acme:${"a".repeat(64)}`,
    "/mova/prod/tenants/acme/TOKEN": "a tenant secret, not a setting",
  });
});
afterAll(() => ssm?.close());

const awsEnv = () => ({
  AWS_REGION: "eu-west-1",
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_ENDPOINT_URL_SSM: ssm.url,
});

describe("loadDeployedConfig", () => {
  it("reads the service's secrets from SSM (decrypted, the prefix only), none from the environment", async () => {
    const config = await loadDeployedConfig({ env: { ...awsEnv(), MOVA_SSM_PREFIX: "/mova/prod/" } });
    expect(config).toMatchObject({
      UPSTASH_REDIS_REST_URL: "https://eu1.upstash.example",
      UPSTASH_REDIS_REST_TOKEN: "upstash-token",
      llmApiKey: "sk-live",
      MOVA_API_KEYS: `acme:${"a".repeat(64)}`,
      AWS_REGION: "eu-west-1",
    });
    expect(ssm.calls.at(-1)).toEqual({ path: "/mova/prod", decrypt: true, recursive: false });
  });

  it("is the environment's configuration without MOVA_SSM_PREFIX", async () => {
    const before = ssm.calls.length;
    const config = await loadDeployedConfig({ env: { ...awsEnv(), LLM_API_KEY: "sk-local" } });
    expect(config.llmApiKey).toBe("sk-local");
    expect(config.UPSTASH_REDIS_REST_URL).toBeUndefined();
    expect(ssm.calls.length).toBe(before);
  });

  it("fails with secrets_unavailable when SSM cannot be read", async () => {
    const failure = await loadDeployedConfig({
      env: { ...awsEnv(), AWS_ENDPOINT_URL_SSM: "http://127.0.0.1:9", MOVA_SSM_PREFIX: "/mova/prod" },
    }).catch((error: unknown) => error);
    expect(isMovaError(failure, "secrets_unavailable")).toBe(true);
  });
});
