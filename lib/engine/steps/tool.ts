/** The `tool_api` step: the document's HTTP tool called through the tools port, with its retries. */
import { applyResponseMapping } from "../../mova/response-mapping.ts";
import { isMovaError } from "../../errors.ts";
import type { ToolApiStep } from "../../mova/schema.ts";
import { resolveRetryPolicy, runWithRetry } from "../retry.ts";
import { buildToolRequest } from "../tool-request.ts";
import type { LiveRun } from "../live-run.ts";
import { baseRecord, finishRecord } from "../step-record.ts";
import { type CallableResult, HttpStatusFailure, classifyToolFailure, failCallable } from "./callable.ts";

/** `parallelId`: the parallel step this one runs as a branch of (its Idempotency-Key names both). */
export async function executeTool(
  state: LiveRun,
  step: ToolApiStep,
  parallelId?: string,
): Promise<CallableResult> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  record.toolId = step.tool_api_id;
  const tool = state.document.tools.find((item) => item.id === step.tool_api_id);
  if (!tool) {
    record.attempts = 0;
    return failCallable(state, record, startedMs, {
      code: "unknown_reference",
      message: `the tool "${step.tool_api_id}" does not exist`,
      retryable: false,
    });
  }
  const timeoutMs = step.timeout_ms ?? tool.timeout_ms;
  let built: ReturnType<typeof buildToolRequest>;
  try {
    built = buildToolRequest(tool, state.resolve, { timeoutMs });
  } catch (error) {
    record.attempts = 0;
    const code = isMovaError(error) ? error.code : "tool_error";
    return failCallable(state, record, startedMs, {
      code,
      message: (error as Error).message,
      retryable: false,
    });
  }
  state.noteUnresolved(built.unresolved);
  for (const value of built.derivedSecrets) state.redactor.addValue(value);
  const idempotencyKey = state.idempotencyKey(parallelId === undefined ? [step.id] : [parallelId, step.id]);
  const request = idempotencyKey === undefined ? built.request : { ...built.request, idempotencyKey };

  const outcome = await runWithRetry(
    {
      policy: resolveRetryPolicy(step.retry, tool.retry),
      timeoutMs,
      signal: state.signal,
      sleep: state.sleep,
      random: state.random,
      classify: classifyToolFailure,
    },
    async (signal) => {
      const response = await state.ports.tools.call(request, signal);
      if (response.status < 200 || response.status > 299) throw new HttpStatusFailure(response);
      return response;
    },
  );
  record.attempts = outcome.attempts;
  if (!outcome.ok) return failCallable(state, record, startedMs, outcome.failure);

  const variable = step.output ?? `${step.id}_result`;
  state.setVariable(variable, outcome.value.body);
  record.httpStatus = outcome.value.status;
  record.output = outcome.value.body;
  record.outputVariable = variable;
  state.setOutput(outcome.value.body, variable);
  // The specification's response_mapping: variables (and session data keys) from the body.
  if (tool.response_mapping) applyResponseMapping(tool.response_mapping, outcome.value.body, state.variables);
  return { record: finishRecord(state, record, startedMs), ok: true, stopped: false };
}
