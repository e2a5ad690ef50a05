/**
 * Failing steps (`failing_step`, and the top failure point of `low_success_rate`): errors a
 * retry can fix get a retry (retry.ts); the others get an error path (error-path.ts). A step
 * whose failures already have a path gets the retry when some of its failures are
 * retryable, else nothing: where its failures go is already decided. A step a retry cannot
 * help (not a prompt or tool step, or at 20 attempts) gets the error path instead. A step
 * that never failed itself (the runs were stopped while in it: a deadline, a cancel) gets
 * nothing: neither a retry nor `on_error` is taken then.
 */
import type { Operation } from "fast-json-patch";
import { errorPathPatch, hasErrorPath } from "./error-path.ts";
import { retryPatch } from "./retry.ts";
import { type SourceProtocol, stepIndex } from "./source.ts";

export interface FailureFigures {
  /** The step's own failures. */
  failures: unknown;
  /** `retry`, `validation` or `investigate` (recommendations.ts). */
  suggestion: unknown;
  retryableFailures: unknown;
}

export function failurePatch(
  protocol: SourceProtocol,
  stepId: string,
  figures: FailureFigures,
): Operation[] | null {
  const index = stepIndex(protocol, stepId);
  if (index < 0 || figures.failures === 0) return null;
  if (figures.suggestion === "retry") return retryPatch(protocol, index) ?? errorPathPatch(protocol, index);
  if (!hasErrorPath(protocol, index)) return errorPathPatch(protocol, index);
  return typeof figures.retryableFailures === "number" && figures.retryableFailures > 0
    ? retryPatch(protocol, index)
    : null;
}
