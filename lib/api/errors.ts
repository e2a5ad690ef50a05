/**
 * Every error the API answers with has one shape: `{ "error": { "code", "message", "details"? } }`.
 * Handlers throw ApiError (or a port's typed error); the error middleware turns it into a response.
 */
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { EngineError } from "../engine/errors.ts";
import { InvalidQueryError, StoreUnavailableError, VersionConflictError } from "../runtime/ports.ts";
import { UnknownProtocolError } from "../service/execution-service.ts";
import { IdempotencyConflictError } from "../service/idempotency.ts";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const notFound = (what: string) => new ApiError(404, "not_found", `${what} not found`);
export const invalidRequest = (message: string, details?: unknown) =>
  new ApiError(400, "invalid_request", message, details);

/** Maps any thrown value to the API error it stands for; unknown errors become a 500 without internals. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof VersionConflictError) {
    return new ApiError(
      409,
      "session_conflict",
      "the session was changed by another request; retry with its new state",
    );
  }
  if (error instanceof StoreUnavailableError) {
    return new ApiError(503, error.code, "a backing service is unavailable; retry later");
  }
  if (error instanceof InvalidQueryError) return new ApiError(400, error.code, error.message);
  // A session's waiting run whose document changed under it (its input step is gone).
  if (error instanceof EngineError) return new ApiError(422, error.code, error.message);
  if (error instanceof UnknownProtocolError) return new ApiError(422, error.code, error.message);
  // The same key while the first request runs (retry later), or with another request (never).
  if (error instanceof IdempotencyConflictError) {
    return new ApiError(error.code === "idempotency_in_progress" ? 409 : 422, error.code, error.message);
  }
  if ((error as { code?: unknown })?.code === "execution_already_finished") {
    return new ApiError(409, "execution_already_finished", (error as Error).message);
  }
  const status = (error as { statusCode?: unknown })?.statusCode;
  // @middy/http-router throws a 404 http error for a route it does not know.
  if (status === 404) return new ApiError(404, "not_found", "no such route");
  if (status === 405) return new ApiError(405, "method_not_allowed", "method not allowed");
  return new ApiError(500, "internal_error", "internal error");
}

export function errorResponse(
  error: ApiError,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  const body: { error: { code: string; message: string; details?: unknown } } = {
    error: { code: error.code, message: error.message },
  };
  if (error.details !== undefined) body.error.details = error.details;
  return {
    statusCode: error.status,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}
