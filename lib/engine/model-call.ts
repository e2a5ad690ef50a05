/**
 * One model call of a prompt step: the step's retries on each model of its list in turn
 * (model fallback). The next model is tried when a model still fails after the retries with
 * a failure worth retrying (timeout, network, 429, 5xx) or is unknown to the provider; any
 * other failure (a bad request, refused credentials, a stopped run) ends the call at once.
 */
import type { LlmRequest, LlmResponse } from "../ports.ts";
import type { ModelFailure } from "../core/run.ts";
import { type AttemptFailure, resolveRetryPolicy, runWithRetry } from "./retry.ts";
import type { LiveRun } from "./live-run.ts";
import { classifyLlmFailure } from "./steps/callable.ts";
import type { PromptStep } from "../mova/schema.ts";

/** The provider does not know the model: the next model of the list may still answer. */
const UNKNOWN_MODEL = "llm_unknown_model";

export type ModelCallOutcome =
  | { ok: true; response: LlmResponse; attempts: number; failures: ModelFailure[]; modelIndex: number }
  | { ok: false; failure: AttemptFailure; attempts: number; failures: ModelFailure[] };

/**
 * Calls the models of `models` from `fromIndex` on (a later call of the same step starts at the
 * model that answered the earlier one). `request` is completed with each model in turn.
 */
export async function callModel(
  state: LiveRun,
  step: PromptStep,
  models: ReadonlyArray<string | undefined>,
  request: Omit<LlmRequest, "model">,
  fromIndex = 0,
): Promise<ModelCallOutcome> {
  const failures: ModelFailure[] = [];
  let attempts = 0;
  for (let index = fromIndex; index < models.length; index += 1) {
    const model = models[index];
    const outcome = await runWithRetry(
      {
        policy: resolveRetryPolicy(step.retry),
        timeoutMs: step.timeout_ms,
        signal: state.signal,
        sleep: state.sleep,
        random: state.random,
        classify: classifyLlmFailure,
      },
      (signal) => state.ports.llm.complete(model === undefined ? request : { ...request, model }, signal),
    );
    attempts += outcome.attempts;
    if (outcome.ok) return { ok: true, response: outcome.value, attempts, failures, modelIndex: index };
    if (outcome.failure.aborted) return { ok: false, failure: outcome.failure, attempts, failures };
    failures.push({
      model: model ?? "default",
      attempts: outcome.attempts,
      error: { code: outcome.failure.code, message: outcome.failure.message },
    });
    const worthAnother = outcome.failure.retryable || outcome.failure.code === UNKNOWN_MODEL;
    if (!worthAnother || index === models.length - 1) {
      return { ok: false, failure: outcome.failure, attempts, failures };
    }
  }
  // Only reached with an empty list, which promptSettings never makes.
  return {
    ok: false,
    failure: { code: "llm_error", message: "no model to call", retryable: false },
    attempts,
    failures,
  };
}
