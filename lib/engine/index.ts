export { runProtocol, resumeRun } from "./engine.ts";
export { dryRun, type DryRunResult, type DryRunStep, type DryRunStop } from "./dry-run.ts";
export { EngineError, type EngineErrorCode } from "./errors.ts";
export { REDACTED, SecretRedactor, secretVariants } from "./redact.ts";
export {
  type AttemptFailure,
  backoffDelay,
  isRetryable,
  isRetryableStatus,
  type Jitter,
  MAX_BACKOFF_MS,
  type RetryPolicy,
  resolveRetryPolicy,
  runWithRetry,
} from "./retry.ts";
export { type BuiltToolRequest, buildToolRequest, renderEndpoint, ToolRequestError } from "./tool-request.ts";
export * from "./types.ts";
export { createResolver, RESERVED_ROOTS, type ResolverSources } from "./variables.ts";
