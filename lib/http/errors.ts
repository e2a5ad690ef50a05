/**
 * Every error the API answers with has one shape: `{ "error": { "code", "message", "details"? } }`.
 * Handlers and the services below them throw MovaError (lib/errors.ts); the error middleware
 * maps its code to an HTTP status through the one table below. A code the table does not know
 * is an internal failure: 500 `internal_error`, without internals.
 */
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { MovaError, StoreUnavailableError } from "../errors.ts";

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  invalid_json: 400,
  invalid_request: 400,
  invalid_cursor: 400,
  invalid_limit: 400,
  invalid_range: 400,
  input_too_deep: 400,
  invalid_event_id: 400,
  unauthorized: 401,
  not_found: 404,
  run_not_found: 404,
  method_not_allowed: 405,
  session_conflict: 409,
  session_busy: 409,
  document_conflict: 409,
  execution_already_finished: 409,
  execution_not_finished: 409,
  idempotency_in_progress: 409,
  run_conflict: 409,
  patch_conflict: 409,
  routing_conflict: 409,
  not_waiting_for_event: 409,
  event_timeout: 409,
  run_busy: 409,
  run_finished: 409,
  not_redrivable: 409,
  redrive_unavailable: 409,
  callback_replayed: 409,
  callback_invalid: 403,
  callback_expired: 410,
  run_control_unavailable: 503,
  payload_too_large: 413,
  input_too_large: 413,
  unsupported_media_type: 415,
  invalid_document: 422,
  unknown_protocol: 422,
  invalid_suspended_run: 422,
  idempotency_key_reused: 422,
  state_too_large: 422,
  recommendation_not_applicable: 422,
  unknown_version: 422,
  analysis_runs_unavailable: 503,
};

/** What the API answers for a failure. */
interface ApiFailure {
  status: number;
  code: string;
  message: string;
  details?: unknown;
}

/** Maps any thrown value to the API failure it stands for; unknown errors become a 500 without internals. */
export function toApiFailure(error: unknown): ApiFailure {
  // Any backing service's failure: the code says which, the message says nothing of internals.
  if (error instanceof StoreUnavailableError)
    return { status: 503, code: error.code, message: "a backing service is unavailable; retry later" };
  if (error instanceof MovaError) {
    const status = STATUS_BY_CODE[error.code];
    if (status !== undefined) {
      return {
        status,
        code: error.code,
        message: error.message,
        ...(error.details !== undefined ? { details: error.details } : {}),
      };
    }
  }
  // @middy/http-router throws an http error with statusCode for a route or method it does not know.
  const statusCode = (error as { statusCode?: unknown })?.statusCode;
  if (statusCode === 404) return { status: 404, code: "not_found", message: "no such route" };
  if (statusCode === 405) return { status: 405, code: "method_not_allowed", message: "method not allowed" };
  return { status: 500, code: "internal_error", message: "internal error" };
}

export function errorResponse(
  failure: ApiFailure,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  const body: { error: { code: string; message: string; details?: unknown } } = {
    error: { code: failure.code, message: failure.message },
  };
  if (failure.details !== undefined) body.error.details = failure.details;
  return {
    statusCode: failure.status,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}
