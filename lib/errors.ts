/**
 * The one error base of the project. Everything that fails on purpose throws a MovaError with a
 * stable, machine-readable `code` (`unknown_protocol`, `history_unavailable`, `llm_timeout`, …);
 * the API turns a code into its HTTP status through one table (lib/http/error-status.ts), the
 * CLI into its exit code, the engine into a step failure. Nothing maps errors by class or by
 * message text.
 */
interface MovaErrorOptions {
  /** Whether trying the same thing again may succeed (a timeout, a 429, a store that is down). */
  retryable?: boolean;
  /** The HTTP status that came with the failure, when it came from an HTTP call (a tool, the LLM). */
  status?: number;
  /** Machine-readable particulars the API returns as `error.details` (a validator's errors). */
  details?: unknown;
  cause?: unknown;
}

export class MovaError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly details: unknown;

  constructor(code: string, message: string, options: MovaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.status = options.status;
    this.details = options.details;
  }
}

/**
 * A backing service (Redis, DynamoDB, SQS) failed or did not answer: retryable, and the API
 * answers 503. A class of its own because callers decide by kind, whatever the service's code.
 */
export class StoreUnavailableError extends MovaError {
  constructor(code: string, message: string, options: Omit<MovaErrorOptions, "retryable"> = {}) {
    super(code, message, { ...options, retryable: true });
  }
}

/** Whether `error` is a MovaError, and (when given) one of these codes. */
export function isMovaError(error: unknown, ...codes: string[]): error is MovaError {
  return error instanceof MovaError && (codes.length === 0 || codes.includes(error.code));
}

/** `what` (a document, a session, an execution) does not exist for this caller: HTTP 404. */
export const notFound = (what: string) => new MovaError("not_found", `${what} not found`);

/** The request is malformed in a way the caller can fix: HTTP 400. */
export const invalidRequest = (message: string, details?: unknown) =>
  new MovaError("invalid_request", message, details === undefined ? {} : { details });
