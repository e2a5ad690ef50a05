/**
 * Retries and timeouts of `prompt` and `tool_api` steps. A step's retry is its own, else
 * (a tool step) its tool's, else the protocol's `error_handling` written onto it; the patch
 * writes the step's own, which wins over both.
 */
import type { Operation } from "fast-json-patch";
import type { PromptStep, Retry, ToolApiStep } from "../../mova/schema.ts";
import { isObject, type SourceProtocol, stepPath, testStep } from "./source.ts";

/** The schema's bound on `retry.attempts`. */
const MAX_RETRY_ATTEMPTS = 20;
const DEFAULT_RETRY = { attempts: 3, backoff_ms: 200 };

export type CallableStep = PromptStep | ToolApiStep;

export function callableAt(protocol: SourceProtocol, index: number): CallableStep | undefined {
  const step = protocol.model.steps[index];
  return step?.action === "prompt" || step?.action === "tool_api" ? step : undefined;
}

function toolOf(protocol: SourceProtocol, step: CallableStep) {
  return step.action === "tool_api"
    ? protocol.document.tools.find((t) => t.id === step.tool_api_id)
    : undefined;
}

/** The retry the step makes today, if any. */
export function retryOf(protocol: SourceProtocol, step: CallableStep): Retry | undefined {
  return step.retry ?? toolOf(protocol, step)?.retry;
}

/** The timeout of one attempt today, if any. */
export function timeoutOf(protocol: SourceProtocol, step: CallableStep): number | undefined {
  return step.timeout_ms ?? toolOf(protocol, step)?.timeout_ms;
}

/** The step's own `retry` with `attempts` tries, keeping what else it wrote there. */
export function retryWith(
  protocol: SourceProtocol,
  index: number,
  step: CallableStep,
  attempts: number,
): Operation {
  const written = protocol.rawSteps[index]!.retry;
  const current = retryOf(protocol, step);
  const value = isObject(written)
    ? { ...written, attempts }
    : { attempts, backoff_ms: current?.backoff_ms ?? DEFAULT_RETRY.backoff_ms };
  return { op: "add", path: stepPath(protocol, index, "retry"), value };
}

/**
 * A step failing with errors a retry can fix: `retry` of 3 attempts (back-off 200 ms), or
 * twice the attempts it already makes, at most 20. None for a step that is not a prompt or
 * tool step, or already makes 20 attempts.
 */
export function retryPatch(protocol: SourceProtocol, index: number): Operation[] | null {
  const step = callableAt(protocol, index);
  if (!step) return null;
  const current = retryOf(protocol, step);
  const attempts = current?.attempts ?? 1;
  if (attempts >= MAX_RETRY_ATTEMPTS) return null;
  const change: Operation = current
    ? retryWith(protocol, index, step, Math.min(MAX_RETRY_ATTEMPTS, Math.max(3, attempts * 2)))
    : { op: "add", path: stepPath(protocol, index, "retry"), value: { ...DEFAULT_RETRY } };
  return [testStep(protocol, index), change];
}
