/**
 * The `prompt` step: the LLM called with the rendered prompt and the system message, its
 * model settings from the step and its preset, each model of a fallback list in turn; with
 * `tools`, the model's tool calls run round after round (each round's calls concurrently) until
 * it answers; with a `response_schema`, the answer parsed and validated (and repaired once)
 * into an object. A failure stores nothing: tool results become variables only when the step
 * succeeds.
 */
import { isMovaError } from "../../errors.ts";
import { profilePreferenceLines } from "../../mova/profile-preferences.ts";
import type { PromptStep } from "../../mova/schema.ts";
import type { ChatMessage, LlmRequest, LlmResponse } from "../../ports.ts";
import type { StepRecord, ToolCallRecord } from "../../core/run.ts";
import { type OfferedTools, offerTools, runToolCall } from "../model-tools.ts";
import { lastTurns } from "../../core/conversation.ts";
import type { LiveRun } from "../live-run.ts";
import { callModel } from "../model-call.ts";
import { type PromptSettings, promptSettings } from "../prompt-settings.ts";
import { baseRecord, finishRecord } from "../step-record.ts";
import { StepUsage } from "../step-usage.ts";
import { type StructuredOutput, parseAnswer, repairRequest, structuredOutput } from "../structured-output.ts";
import type { AttemptFailure } from "../retry.ts";
import { type CallableResult, failCallable } from "./callable.ts";

const DEFAULT_MAX_TOOL_ROUNDS = 5;

export async function executePrompt(state: LiveRun, step: PromptStep): Promise<CallableResult> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  let settings: PromptSettings;
  let structured: StructuredOutput | undefined;
  let offered: OfferedTools | undefined;
  try {
    settings = promptSettings(state.document, step);
    if (step.response_schema) structured = structuredOutput(step.id, step.response_schema);
    if (step.tools && step.tools.length > 0) offered = offerTools(state.document, step);
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
  const preferences = profilePreferenceLines(state.resolve);
  if (preferences) systemParts.push(preferences);
  if (systemParts.length > 0) messages.push({ role: "system", content: systemParts.join("\n\n") });
  // Memory: the last turns of the session's conversation, oldest first, before the prompt.
  const memoryTurns = step.history ?? state.protocol.memory?.turns ?? 0;
  for (const turn of lastTurns(state.conversation, memoryTurns)) {
    messages.push({ role: turn.role, content: turn.content });
  }
  messages.push({ role: "user", content: prompt });

  const conversation = new ModelConversation(state, step, settings, record, structured, offered);
  const first = await conversation.call(messages);
  if (!first.ok) return failCallable(state, record, startedMs, first.failure);
  let response = first.response;

  // Tool rounds: the model's calls of a round run concurrently, their results go back to it.
  const toolResults = new Map<string, unknown>();
  const toolCalls: ToolCallRecord[] = [];
  const maxRounds = step.max_tool_rounds ?? DEFAULT_MAX_TOOL_ROUNDS;
  let endedByTools = false;
  for (let round = 1; offered && response.toolCalls && response.toolCalls.length > 0; round += 1) {
    const calls = response.toolCalls;
    if (round > maxRounds) {
      return failCallable(state, record, startedMs, {
        code: "tool_rounds_exceeded",
        message: `the model still called tools after ${maxRounds} rounds (max_tool_rounds)`,
        retryable: false,
      });
    }
    const unknown = calls.find((call) => !offered.byName.has(call.name));
    if (unknown) {
      return failCallable(state, record, startedMs, {
        code: "llm_unknown_tool",
        message: `the model called "${unknown.name.slice(0, 100)}", which is not a tool this step offers`,
        retryable: false,
      });
    }
    messages.push({ role: "assistant", content: response.text, toolCalls: calls });
    const outcomes = await Promise.all(
      calls.map((call, index) =>
        runToolCall(state, step, offered.byName.get(call.name)!, call, round, index),
      ),
    );
    for (const outcome of outcomes) toolCalls.push(outcome.record);
    record.toolCalls = toolCalls;
    if (outcomes.some((outcome) => outcome.stopped)) {
      return failCallable(state, record, startedMs, {
        code: "aborted",
        message: "the run was stopped",
        retryable: false,
        aborted: true,
      });
    }
    outcomes.forEach((outcome, index) => {
      messages.push({
        role: "tool",
        toolCallId: (calls[index] as { id: string }).id,
        content: outcome.content,
      });
      if (outcome.result) toolResults.set(outcome.result.toolId, outcome.result.value);
    });
    if (step.continue_after_tools === false) {
      endedByTools = true;
      break;
    }
    const next = await conversation.call(messages);
    if (!next.ok) return failCallable(state, record, startedMs, next.failure);
    response = next.response;
  }

  let output: unknown = response.text;
  if (structured && !endedByTools) {
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
  for (const [toolId, value] of toolResults) state.setVariable(`tool_${toolId}_result`, value);
  state.setVariable(variable, output);
  record.output = output;
  record.outputVariable = variable;
  state.setOutput(output, variable);
  // A structured answer is data for the flow, not a reply shown to the user.
  if (!structured && response.text !== "") state.reply(response.text);
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}

/**
 * The model calls of one step: each goes through the fallback list (a later call starts at the
 * model that answered the earlier one), and every call's tokens, cost and model reach the record.
 */
class ModelConversation {
  readonly #usage = new StepUsage();
  #modelIndex = 0;
  // A sink that throws must not fail the step: streaming is a view of the answer, not the answer.
  readonly #onDelta = (delta: string): void => {
    try {
      this.state.onToken?.(this.step.id, delta);
    } catch {
      // ignored (see RunOptions.onToken)
    }
  };

  constructor(
    readonly state: LiveRun,
    readonly step: PromptStep,
    readonly settings: PromptSettings,
    readonly record: StepRecord,
    readonly structured: StructuredOutput | undefined,
    readonly offered: OfferedTools | undefined,
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
        ...(this.offered && { tools: this.offered.definitions }),
        ...(state.onToken && !this.structured && { onDelta: this.#onDelta }),
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
