/** The `prompt` step: the LLM called with the rendered prompt and the system message. */
import { profilePreferenceLines } from "../../mova/profile-preferences.ts";
import type { PromptStep } from "../../mova/schema.ts";
import type { ChatMessage } from "../../ports.ts";
import { resolveRetryPolicy, runWithRetry } from "../retry.ts";
import type { LiveRun } from "../live-run.ts";
import { baseRecord, finishRecord } from "../step-record.ts";
import { type CallableResult, classifyLlmFailure, failCallable } from "./callable.ts";

export async function executePrompt(state: LiveRun, step: PromptStep): Promise<CallableResult> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  const prompt = state.render(step.prompt);
  record.prompt = prompt;
  const systemParts: string[] = [];
  if (step.system) systemParts.push(state.render(step.system));
  for (const id of step.instructions ?? []) {
    const instruction = state.document.instructions.find((item) => item.id === id);
    if (!instruction) {
      record.status = "failed";
      record.attempts = 0;
      record.error = { code: "unknown_reference", message: `the instruction "${id}" does not exist` };
      return {
        record: finishRecord(state, record, startedMs),
        ok: false,
        stopped: false,
        error: record.error,
      };
    }
    systemParts.push(instruction.content);
  }
  const messages: ChatMessage[] = [];
  const preferences = profilePreferenceLines(state.resolve);
  if (preferences) systemParts.push(preferences);
  if (systemParts.length > 0) messages.push({ role: "system", content: systemParts.join("\n\n") });
  messages.push({ role: "user", content: prompt });

  const outcome = await runWithRetry(
    {
      policy: resolveRetryPolicy(step.retry),
      timeoutMs: step.timeout_ms,
      signal: state.signal,
      sleep: state.sleep,
      random: state.random,
      classify: classifyLlmFailure,
    },
    (signal) =>
      state.ports.llm.complete(
        {
          messages,
          ...(step.model !== undefined && { model: step.model }),
          ...(step.temperature !== undefined && { temperature: step.temperature }),
          ...(step.max_tokens !== undefined && { maxTokens: step.max_tokens }),
          ...(step.timeout_ms !== undefined && { timeoutMs: step.timeout_ms }),
        },
        signal,
      ),
  );
  record.attempts = outcome.attempts;
  if (!outcome.ok) return failCallable(state, record, startedMs, outcome.failure);

  const response = outcome.value;
  const variable = step.output ?? `prompt_response_${step.id}`;
  state.setVariable(variable, response.text);
  record.output = response.text;
  record.outputVariable = variable;
  record.model = response.model;
  if (response.usage) record.usage = response.usage;
  if (response.offline || state.ports.llm.offline) {
    record.offline = true;
    state.offline = true;
  }
  state.setOutput(response.text, variable);
  state.replies.push(response.text);
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}
