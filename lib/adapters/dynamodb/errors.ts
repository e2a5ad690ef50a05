/** Which DynamoDB failures mean "the store is unavailable, try later" rather than a bug. */
import { StoreUnavailableError } from "../../errors.ts";
import {
  type AttributeValue,
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
} from "@aws-sdk/client-dynamodb";

const UNAVAILABLE_NAMES = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "AbortError",
  "ResourceNotFoundException", // the table is missing: a deployment problem, not the caller's
  "UnrecognizedClientException",
  "CredentialsProviderError",
]);

const NETWORK_CODES = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|socket hang up/;

function isDynamoUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (UNAVAILABLE_NAMES.has(error.name)) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && NETWORK_CODES.test(code)) return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (typeof status === "number" && status >= 500) return true;
  return NETWORK_CODES.test(error.message);
}

export function isConditionFailed(error: unknown): boolean {
  return error instanceof Error && error.name === "ConditionalCheckFailedException";
}

/** Runs a DynamoDB call, turning unavailability into StoreUnavailableError(code). */
export async function guardDynamo<T>(code: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isDynamoUnavailable(error)) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new StoreUnavailableError(code, `DynamoDB is unavailable: ${reason}`, { cause: error });
    }
    throw error;
  }
}

/**
 * Every item of a query, page after page, each page's request guarded as `guardDynamo` does.
 * A page is read only when the caller asks for an item beyond the previous ones: stopping the
 * iteration (`break`) reads no further page.
 */
export async function* queryItems(
  client: DynamoDBClient,
  code: string,
  input: Omit<QueryCommandInput, "ExclusiveStartKey">,
): AsyncGenerator<Record<string, AttributeValue>> {
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await guardDynamo(code, () =>
      client.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey })),
    );
    yield* page.Items ?? [];
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** Key parts are URI-encoded so that `#` in a tenant or name cannot make two keys meet. */
export const keyPart = (value: string) => encodeURIComponent(value);
