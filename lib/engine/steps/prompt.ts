/**
 * The `prompt` step: the LLM called with the rendered prompt and the system message, its
 * model settings from the step and its preset, each model of a fallback list in turn.
 */
import { isMovaError } from "../../errors.ts";
import type { PromptStep } from "../../mova/schema.ts";
import type { ChatMessage } from "../../ports.ts";
import type { LiveRun } from "../live-run.ts";
import { callModel } from "../model-call.ts";
import { type PromptSettings, promptSettings } from "../prompt-settings.ts";
import { baseRecord, finishRecord } from "../step-record.ts";
import { type CallableResult, failCallable } from "./callable.ts";

export async function executePrompt(state: LiveRun, step: PromptStep): Promise<CallableResult> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  let settings: PromptSettings;
  try {
    settings = promptSettings(state.document, step);
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

  const outcome = await callModel(state, step, settings.models, {
    messages,
    ...(settings.temperature !== undefined && { temperature: settings.temperature }),
    ...(settings.maxTokens !== undefined && { maxTokens: settings.maxTokens }),
    ...(step.timeout_ms !== undefined && { timeoutMs: step.timeout_ms }),
  });
  record.attempts = outcome.attempts;
  if (outcome.failures.length > 0 && settings.models.length > 1) record.modelFailures = outcome.failures;
  if (!outcome.ok) return failCallable(state, record, startedMs, outcome.failure);

  const response = outcome.response;
  const variable = step.output ?? `prompt_response_${step.id}`;
  state.setVariable(variable, response.text);
  record.output = response.text;
  record.outputVariable = variable;
  record.model = response.model;
  if (response.usage) record.usage = response.usage;
  if (response.costUsd !== undefined) record.costUsd = response.costUsd;
  if (response.offline || state.ports.llm.offline) {
    record.offline = true;
    state.offline = true;
  }
  state.setOutput(response.text, variable);
  state.replies.push(response.text);
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}
