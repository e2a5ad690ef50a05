/**
 * Slow steps. When the tail is the problem (p95 more than twice the median) it is cut: a
 * `timeout_ms` of about twice the median (rounded up to 100 ms, at least 1 s, never above the
 * timeout the step has) and a retry of at least 2 attempts, so the few slow calls are given
 * up and tried again instead of waited for (a timeout is an error a retry fixes). A `tool_api`
 * step slow throughout gets the same: its time is the endpoint's, which the document cannot
 * change otherwise. A `prompt` step slow throughout has its `max_tokens` (its own, or its
 * preset's) halved, as the reply's length is what its time grows with, but never below 1.5
 * times the completion tokens its calls used on average, so the usual reply is not cut; with
 * no `max_tokens`, or one its replies already fill, there is no patch (the model or the
 * prompt is a person's choice). Other steps get none.
 */
import type { Operation } from "fast-json-patch";
import type { PromptStep } from "../../mova/schema.ts";
import { callableAt, type CallableStep, retryOf, retryWith, timeoutOf } from "./retry.ts";
import { type SourceProtocol, stepIndex, stepPath, testStep } from "./source.ts";

export interface SlowFigures {
  p50Ms: unknown;
  p95Ms: unknown;
  /** Completion tokens per call of the step, null when none were counted. */
  meanCompletionTokens?: unknown;
}

const MIN_TIMEOUT_MS = 1000;
const MIN_ATTEMPTS = 2;

function cutTail(protocol: SourceProtocol, index: number, step: CallableStep, p50: number): Operation[] {
  const current = timeoutOf(protocol, step);
  const wanted = Math.max(MIN_TIMEOUT_MS, Math.ceil((2 * p50) / 100) * 100);
  const timeout = current === undefined ? wanted : Math.min(wanted, current);
  const changes: Operation[] = [];
  if (timeout !== step.timeout_ms)
    changes.push({ op: "add", path: stepPath(protocol, index, "timeout_ms"), value: timeout });
  if ((retryOf(protocol, step)?.attempts ?? 1) < MIN_ATTEMPTS)
    changes.push(retryWith(protocol, index, step, MIN_ATTEMPTS));
  return changes;
}

function shorterReplies(
  protocol: SourceProtocol,
  index: number,
  step: PromptStep,
  meanTokens: number | undefined,
): Operation[] {
  const preset = step.preset === undefined ? undefined : protocol.document.presets[step.preset];
  const current = step.max_tokens ?? preset?.max_tokens;
  if (current === undefined) return [];
  const floor = meanTokens === undefined ? 1 : Math.ceil(1.5 * meanTokens);
  const lowered = Math.max(1, floor, Math.floor(current / 2));
  return lowered < current
    ? [{ op: "add", path: stepPath(protocol, index, "max_tokens"), value: lowered }]
    : [];
}

export function slowStepPatch(
  protocol: SourceProtocol,
  stepId: string,
  figures: SlowFigures,
): Operation[] | null {
  const { p50Ms: p50, p95Ms: p95, meanCompletionTokens: mean } = figures;
  if (typeof p50 !== "number" || typeof p95 !== "number" || p50 <= 0) return null;
  const index = stepIndex(protocol, stepId);
  const step = index < 0 ? undefined : callableAt(protocol, index);
  if (!step) return null;
  const changes =
    p95 > 2 * p50 || step.action === "tool_api"
      ? cutTail(protocol, index, step, p50)
      : shorterReplies(protocol, index, step, typeof mean === "number" && mean > 0 ? mean : undefined);
  return changes.length === 0 ? null : [testStep(protocol, index), ...changes];
}
