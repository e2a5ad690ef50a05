/**
 * The configuration of a deployed function: the environment (names, tables, queues, limits:
 * nothing secret) plus the service's secrets, read at start-up from SSM SecureString
 * parameters under `MOVA_SSM_PREFIX` (`/mova/<stage>`) by Powertools Parameters, decrypted
 * and cached. Secrets never sit in Lambda environment variables, where anyone allowed to read
 * the function's configuration could read them. Without `MOVA_SSM_PREFIX` (locally, in tests)
 * this is `loadConfig` of the environment.
 */
import { SSMProvider } from "@aws-lambda-powertools/parameters/ssm";
import { type Config, loadConfig } from "../config.ts";
import { StoreUnavailableError } from "../errors.ts";
import { createSsmClient } from "../adapters/aws-clients.ts";

/** The parameter under the prefix → the setting it provides. */
export const SECRET_PARAMETERS: Readonly<Record<string, string>> = {
  "upstash-redis-rest-url": "UPSTASH_REDIS_REST_URL",
  "upstash-redis-rest-token": "UPSTASH_REDIS_REST_TOKEN",
  "llm-api-key": "LLM_API_KEY",
  "api-keys": "MOVA_API_KEYS",
  "callback-secret": "CALLBACK_SECRET",
};

export interface DeployedConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** The SSM client's stand-in endpoint, for tests (`AWS_ENDPOINT_URL_SSM` works too). */
  provider?: Pick<SSMProvider, "getMultiple">;
}

export async function loadDeployedConfig(options: DeployedConfigOptions = {}): Promise<Config> {
  const env = options.env ?? process.env;
  const prefix = env.MOVA_SSM_PREFIX?.replace(/\/+$/, "");
  if (!prefix) return loadConfig(env);
  const provider =
    options.provider ??
    new SSMProvider({ awsSdkV3Client: createSsmClient(loadConfig(env), env === process.env ? {} : { env }) });
  let values: Record<string, unknown> | undefined;
  try {
    values = (await provider.getMultiple(prefix, { decrypt: true, recursive: false, maxAge: 300 })) as
      | Record<string, unknown>
      | undefined;
  } catch {
    throw new StoreUnavailableError("secrets_unavailable", "the service's secrets cannot be read from SSM");
  }
  const merged: NodeJS.ProcessEnv = { ...env };
  for (const [name, setting] of Object.entries(SECRET_PARAMETERS)) {
    const value = values?.[name];
    // An empty value ("-" too, as SSM refuses empty strings) leaves the setting unset: a stage without an LLM.
    if (typeof value === "string" && value !== "" && value !== "-") merged[setting] = value;
  }
  return loadConfig(merged);
}
