/**
 * What `prompt` and `tool_api` steps share: how a port's failure is classified for the retry
 * loop, how a failed attempt becomes the step's record, and the step's outcome.
 */
import { MovaError } from "../../errors.ts";
import type { Step } from "../../mova/schema.ts";
import type { ToolResponse } from "../../ports.ts";
import type { StepError, StepRecord } from "../../core/run.ts";
import { type AttemptFailure, isRetryable, isRetryableStatus } from "../retry.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome } from "../flow.ts";
import { stopError } from "../run-stop.ts";
import { finishRecord, stepFailure } from "../step-record.ts";

export function classifyPortError(error: unknown, fallbackCode: string): AttemptFailure {
  if (error instanceof MovaError) {
    const failure: AttemptFailure = {
      code: error.status !== undefined && fallbackCode === "tool_error" ? "tool_http_status" : error.code,
      message: error.message,
      retryable: isRetryable(error),
    };
    if (error.status !== undefined) failure.httpStatus = error.status;
    return failure;
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: fallbackCode, message, retryable: false };
}

/** Thrown inside a tool attempt for a non-2xx answer, so that the retry loop sees it. */
export class HttpStatusFailure extends Error {
  readonly response: ToolResponse;
  constructor(response: ToolResponse) {
    super(`the tool answered HTTP ${response.status}`);
    this.response = response;
  }
}

// The retry loop's classifiers capture nothing, so they are made once, not per step.
export const classifyLlmFailure = (error: unknown): AttemptFailure => classifyPortError(error, "llm_error");

export const classifyToolFailure = (error: unknown): AttemptFailure => {
  if (error instanceof HttpStatusFailure) {
    return {
      code: "tool_http_status",
      message: error.message,
      retryable: isRetryableStatus(error.response.status),
      httpStatus: error.response.status,
    };
  }
  return classifyPortError(error, "tool_error");
};

export type CallableResult = { record: StepRecord; ok: boolean; stopped: boolean; error?: StepError };

export function failCallable(
  state: LiveRun,
  record: StepRecord,
  startedMs: number,
  failure: AttemptFailure,
): CallableResult {
  record.status = "failed";
  const stopKind = failure.aborted ? state.stopKind() : undefined;
  record.error = stopKind ? stopError(stopKind) : { code: failure.code, message: failure.message };
  if (failure.httpStatus !== undefined) record.httpStatus = failure.httpStatus;
  return {
    record: finishRecord(state, record, startedMs),
    ok: false,
    stopped: stopKind !== undefined,
    error: record.error,
  };
}

export function callableOutcome(state: LiveRun, step: Step, result: CallableResult): Outcome {
  if (result.stopped) return { kind: "stop" };
  if (!result.ok) return { kind: "fail", error: stepFailure(step, result.error) };
  return { kind: "goto", stepId: state.following(step) };
}
