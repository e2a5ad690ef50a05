/**
 * The specification's `error_handling` on a protocol, `{ retry_count, fallback_step_id }`,
 * written onto the `prompt` and `tool_api` steps that set nothing themselves, so that the
 * engine has one mechanism: a step's `retry` (`1 + retry_count` attempts, the default
 * backoff) and its `on_error` (where the run goes when the step still fails).
 */
import type { MovaDocument, Protocol } from "./schema.ts";

/** The waits between attempts that `retry` defaults to. */
const DEFAULT_BACKOFF_MS = 200;

export function applyErrorHandlingTo(protocol: Protocol): void {
  const handling = protocol.error_handling;
  if (!handling) return;
  const { retry_count: retryCount, fallback_step_id: fallback } = handling;
  for (const step of protocol.steps) {
    if (step.action !== "prompt" && step.action !== "tool_api") continue;
    if (retryCount !== undefined && step.retry === undefined)
      step.retry = { attempts: 1 + retryCount, backoff_ms: DEFAULT_BACKOFF_MS };
    // The fallback step does not fall back onto itself: its own failure fails the run.
    if (fallback !== undefined && step.on_error === undefined && step.id !== fallback)
      step.on_error = fallback;
  }
}

/** Applies every protocol's `error_handling` (to a freshly parsed document: it is changed in place). */
export function applyErrorHandling(document: MovaDocument): MovaDocument {
  for (const protocol of document.protocols) applyErrorHandlingTo(protocol);
  return document;
}
