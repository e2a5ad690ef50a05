/**
 * The `prompt` step: the LLM called with the rendered prompt and the system message, its
 * model settings from the step and its preset, each model of a fallback list in turn; with a
 * `response_schema`, the answer parsed and validated (and repaired once) into an object.
 */
import { isMovaError } from "../../errors.ts";
import type { PromptStep } from "../../mova/schema.ts";
import type { ChatMessage, LlmRequest, LlmResponse } from "../../ports.ts";
import type { StepRecord } from "../../core/run.ts";
import type { LiveRun } from "../live-run.ts";
import { callModel } from "../model-call.ts";
import { type PromptSettings, promptSettings } from "../prompt-settings.ts";
import { baseRecord, finishRecord } from "../step-record.ts";
import { StepUsage } from "../step-usage.ts";
import { type StructuredOutput, parseAnswer, repairRequest, structuredOutput } from "../structured-output.ts";
import type { AttemptFailure } from "../retry.ts";
import { type CallableResult, failCallable } from "./callable.ts";

export async function executePrompt(state: LiveRun, step: PromptStep): Promise<CallableResult> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  let settings: PromptSettings;
  let structured: StructuredOutput | undefined;
  try {
    settings = promptSettings(state.document, step);
    if (step.response_schema) structured = structuredOutput(step.id, step.response_schema);
  } catch (error) {
    record.attempts = 0;
    const code = isMovaError(error) ? error.code : "llm_error";
    return failCallable(state, record, startedMs, {
      code,
      message: (error as Error).message,
      retryable: false,
    });
  }
  const prompt = state.render(step.prompt);
  record.prompt = prompt;
  const systemParts: string[] = [];
  if (settings.system !== undefined) systemParts.push(state.render(settings.system));
  for (const id of step.instructions ?? []) {
    const instruction = state.document.instructions.find((item) => item.id === id);
    if (!instruction) {
      record.attempts = 0;
      return failCallable(state, record, startedMs, {
        code: "unknown_reference",
        message: `the instruction "${id}" does not exist`,
        retryable: false,
      });
    }
    systemParts.push(instruction.content);
  }
  const messages: ChatMessage[] = [];
  if (systemParts.length > 0) messages.push({ role: "system", content: systemParts.join("\n\n") });
  messages.push({ role: "user", content: prompt });

  const conversation = new ModelConversation(state, step, settings, record, structured);
  const first = await conversation.call(messages);
  if (!first.ok) return failCallable(state, record, startedMs, first.failure);
  let response = first.response;

  let output: unknown = response.text;
  if (structured) {
    let parsed = parseAnswer(response.text, structured.compiled);
    if (!parsed.ok) {
      // One repair: the invalid answer and what is wrong with it go back to the model.
      const repair = await conversation.call([
        ...messages,
        { role: "assistant", content: response.text },
        { role: "user", content: repairRequest(parsed.problems) },
      ]);
      if (!repair.ok) return failCallable(state, record, startedMs, repair.failure);
      response = repair.response;
      parsed = parseAnswer(response.text, structured.compiled);
    }
    if (!parsed.ok) {
      return failCallable(state, record, startedMs, {
        code: "invalid_llm_output",
        message: `the answer does not match the response_schema after one repair: ${parsed.problems.join("; ")}`,
        retryable: false,
      });
    }
    output = parsed.value;
  }

  const variable = step.output ?? `prompt_response_${step.id}`;
  state.setVariable(variable, output);
  record.output = output;
  record.outputVariable = variable;
  state.setOutput(output, variable);
  // A structured answer is data for the flow, not a reply shown to the user.
  if (!structured) state.replies.push(response.text);
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}

/**
 * The model calls of one step: each goes through the fallback list (a later call starts at the
 * model that answered the earlier one), and every call's tokens, cost and model reach the record.
 */
class ModelConversation {
  readonly #usage = new StepUsage();
  #modelIndex = 0;

  constructor(
    readonly state: LiveRun,
    readonly step: PromptStep,
    readonly settings: PromptSettings,
    readonly record: StepRecord,
    readonly structured: StructuredOutput | undefined,
  ) {
    record.attempts = 0;
  }

  async call(
    messages: ChatMessage[],
    extra: Partial<LlmRequest> = {},
  ): Promise<{ ok: true; response: LlmResponse } | { ok: false; failure: AttemptFailure }> {
    const { state, step, settings, record } = this;
    const outcome = await callModel(
      state,
      step,
      settings.models,
      {
        messages,
        ...(settings.temperature !== undefined && { temperature: settings.temperature }),
        ...(settings.maxTokens !== undefined && { maxTokens: settings.maxTokens }),
        ...(step.timeout_ms !== undefined && { timeoutMs: step.timeout_ms }),
        ...(this.structured && { responseFormat: this.structured.format }),
        ...extra,
      },
      this.#modelIndex,
    );
    record.attempts += outcome.attempts;
    if (outcome.failures.length > 0 && settings.models.length > 1) {
      record.modelFailures = [...(record.modelFailures ?? []), ...outcome.failures];
    }
    if (!outcome.ok) return outcome;
    this.#modelIndex = outcome.modelIndex;
    const response = outcome.response;
    this.#usage.add(response);
    record.model = response.model;
    if (this.#usage.usage) record.usage = this.#usage.usage;
    if (this.#usage.costUsd === undefined) delete record.costUsd;
    else record.costUsd = this.#usage.costUsd;
    if (response.offline || state.ports.llm.offline) {
      record.offline = true;
      state.offline = true;
    }
    return { ok: true, response };
  }
}
