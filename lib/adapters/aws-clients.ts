/**
 * The AWS SDK clients of the runtime. The same code talks to AWS and to the local stack: the
 * endpoints come from the standard `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`
 * variables (the SDK reads them from `process.env` itself; they are also passed explicitly
 * so that an `env` other than the process's — one local stack among several in a test —
 * is honoured too).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { Config } from "../config.ts";

interface AwsClientOptions {
  /** Where to read endpoint and credential variables; the process's environment by default. */
  env?: NodeJS.ProcessEnv;
  /** Time to open a connection (ms). */
  connectionTimeoutMs?: number;
  /** Time for a whole request (ms): a stuck endpoint fails the call instead of the Lambda. */
  requestTimeoutMs?: number;
  /** Tries per call, the first included (the SDK retries throttling and network errors). */
  maxAttempts?: number;
}

const DEFAULTS = { connectionTimeoutMs: 1_000, requestTimeoutMs: 5_000, maxAttempts: 3 };

function commonOptions(
  config: Pick<Config, "AWS_REGION">,
  endpointVariable: string,
  options: AwsClientOptions,
) {
  const env = options.env ?? process.env;
  const endpoint = env[endpointVariable] || env.AWS_ENDPOINT_URL || undefined;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  // Static credentials only when another environment than the process's is given: with the
  // process's own, the SDK's default chain (Lambda role, profile, env) is the right source.
  const credentials =
    options.env && options.env !== process.env && accessKeyId && secretAccessKey
      ? {
          accessKeyId,
          secretAccessKey,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : undefined;
  return {
    region: env.AWS_REGION || config.AWS_REGION,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: options.maxAttempts ?? DEFAULTS.maxAttempts,
    requestHandler: {
      connectionTimeout: options.connectionTimeoutMs ?? DEFAULTS.connectionTimeoutMs,
      requestTimeout: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    },
  };
}

export function createDynamoDbClient(
  config: Pick<Config, "AWS_REGION">,
  options: AwsClientOptions = {},
): DynamoDBClient {
  return new DynamoDBClient(commonOptions(config, "AWS_ENDPOINT_URL_DYNAMODB", options));
}

export function createSqsClient(
  config: Pick<Config, "AWS_REGION">,
  options: AwsClientOptions = {},
): SQSClient {
  return new SQSClient(commonOptions(config, "AWS_ENDPOINT_URL_SQS", options));
}

export function createSsmClient(
  config: Pick<Config, "AWS_REGION">,
  options: AwsClientOptions = {},
): SSMClient {
  return new SSMClient(commonOptions(config, "AWS_ENDPOINT_URL_SSM", options));
}
