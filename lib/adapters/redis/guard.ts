/**
 * What the Redis adapters do with a failed call: a failure a caller can only retry later
 * becomes StoreUnavailableError with the store's code (503); anything else passes unchanged.
 * The twin of guardDynamo in lib/adapters/dynamodb/errors.ts.
 */
import { StoreUnavailableError } from "../../errors.ts";

/**
 * Redis errors a caller can do nothing about but retry later: the REST endpoint unreachable
 * or timing out, a gateway answering non-JSON, or the bridge losing its Redis. Command
 * errors (`ERR …`, `WRONGTYPE …`) are bugs and pass through unchanged.
 */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "AbortError" || error.name === "TimeoutError") return true;
  if (error instanceof TypeError) return true; // fetch: connection refused, reset, DNS
  if (error.name === "UpstashJSONParseError") return true;
  if (error.name === "UpstashError") return !/\b(ERR|WRONGTYPE|NOSCRIPT|NOPERM|BUSY)\b/.test(error.message);
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|socket hang up|fetch failed/i.test(
    error.message,
  );
}

/** Runs a Redis call; an unreachable Redis is `code` ("the <store> is unreachable: …"). */
export async function guardRedis<T>(code: string, store: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isUnavailable(error)) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new StoreUnavailableError(code, `the ${store} is unreachable: ${reason}`, { cause: error });
    }
    throw error;
  }
}
