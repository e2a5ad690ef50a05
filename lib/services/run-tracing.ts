/**
 * A run leg's OpenTelemetry trace, derived from what the leg already reports: its step records
 * (secrets redacted, as history holds them) and its outcome. Nothing here reaches into the
 * engine. The spans follow the OpenTelemetry GenAI semantic conventions: the leg is an
 * `invoke_agent` span, each step a child span, a prompt step's model calls a `chat` span with
 * the model and its tokens, and each tool call (a `tool_api` step, or a tool the model called)
 * an `execute_tool` span. Tracing never changes a run's outcome: building or exporting a trace
 * that fails is logged and forgotten.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { StepRecord } from "../core/run.ts";
import type { RunTraceExporter, TraceSpan } from "../ports.ts";

export interface LegTraceInput {
  tenant: string;
  executionId: string;
  document: string;
  documentVersion?: number | undefined;
  protocol: string;
  /** The status the run has at the leg's end. */
  status: string;
  error?: { code: string; message?: string } | undefined;
  /** The step records of this leg only. */
  steps: readonly StepRecord[];
  startMs: number;
  endMs: number;
  /** `gen_ai.system`: who serves the model calls (e.g. `openai`). */
  system: string;
}

/** The leg's trace: its root span with a span per step, model call and tool call. */
export function legTrace(input: LegTraceInput): TraceSpan {
  const failed = input.status === "failed" || input.status === "timed_out";
  return {
    name: `invoke_agent ${input.document}`,
    startMs: input.startMs,
    endMs: Math.max(input.endMs, input.startMs),
    attributes: {
      "gen_ai.operation.name": "invoke_agent",
      "gen_ai.system": input.system,
      "gen_ai.agent.name": input.document,
      "mova.tenant": input.tenant,
      "mova.execution_id": input.executionId,
      "mova.document": input.document,
      ...(input.documentVersion !== undefined ? { "mova.document_version": input.documentVersion } : {}),
      "mova.protocol": input.protocol,
      "mova.run.status": input.status,
      "mova.leg.steps": input.steps.length,
      ...(input.error ? { "error.type": input.error.code } : {}),
    },
    ...(failed && input.error ? { error: input.error.message ?? input.error.code } : {}),
    children: input.steps.map((step) => stepSpan(step, input.system)),
  };
}

function stepSpan(step: StepRecord, system: string): TraceSpan {
  const startMs = Date.parse(step.startedAt);
  const endMs = startMs + Math.max(0, step.durationMs);
  const children: TraceSpan[] = [];
  if (step.action === "prompt" && (step.model !== undefined || step.usage !== undefined)) {
    children.push(chatSpan(step, system, startMs, endMs));
  }
  if (step.action === "tool_api" && step.toolId !== undefined) {
    children.push({
      name: `execute_tool ${step.toolId}`,
      startMs,
      endMs,
      attributes: {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": step.toolId,
        ...(step.httpStatus !== undefined ? { "http.response.status_code": step.httpStatus } : {}),
        ...(step.error ? { "error.type": step.error.code } : {}),
      },
      ...(step.status === "failed" && step.error ? { error: step.error.message } : {}),
      children: [],
    });
  }
  // The model's tool calls carry durations, not start times: laid end to end from the step's start.
  let cursor = startMs;
  for (const call of step.toolCalls ?? []) {
    const callEnd = Math.min(endMs, cursor + Math.max(0, call.durationMs));
    children.push({
      name: `execute_tool ${call.tool}`,
      startMs: cursor,
      endMs: callEnd,
      attributes: {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.tool,
        "mova.tool_call.status": call.status,
        ...(call.httpStatus !== undefined ? { "http.response.status_code": call.httpStatus } : {}),
        ...(call.error ? { "error.type": call.error.code } : {}),
      },
      ...(call.status !== "succeeded" && call.error ? { error: call.error.message } : {}),
      children: [],
    });
    cursor = callEnd;
  }
  return {
    name: `step ${step.id}`,
    startMs,
    endMs,
    attributes: {
      "mova.step.id": step.id,
      "mova.step.action": step.action,
      "mova.step.status": step.status,
      "mova.step.attempts": step.attempts,
      ...(step.error ? { "error.type": step.error.code } : {}),
    },
    ...(step.status === "failed" && step.error ? { error: step.error.message } : {}),
    children,
  };
}

/**
 * A prompt step's model calls as one `chat` span: the step record sums the tokens of every call
 * it made (repairs and tool rounds included) and names the model that answered.
 */
function chatSpan(step: StepRecord, system: string, startMs: number, endMs: number): TraceSpan {
  const model = step.model;
  const requested = step.modelFailures?.[0]?.model ?? model;
  return {
    name: model !== undefined ? `chat ${model}` : "chat",
    startMs,
    endMs,
    attributes: {
      "gen_ai.operation.name": "chat",
      "gen_ai.system": system,
      ...(requested !== undefined ? { "gen_ai.request.model": requested } : {}),
      ...(model !== undefined ? { "gen_ai.response.model": model } : {}),
      ...(step.usage
        ? {
            "gen_ai.usage.input_tokens": step.usage.promptTokens,
            "gen_ai.usage.output_tokens": step.usage.completionTokens,
          }
        : {}),
      ...(step.costUsd !== undefined ? { "mova.cost_usd": step.costUsd } : {}),
      ...(step.error ? { "error.type": step.error.code } : {}),
    },
    ...(step.status === "failed" && step.error ? { error: step.error.message } : {}),
    children: [],
  };
}

/**
 * Exports a leg's trace and waits (within the exporter's bound) for it to be sent: a Lambda
 * may freeze once the leg returns. Never throws.
 */
export async function exportLegTrace(
  exporter: RunTraceExporter | undefined,
  input: LegTraceInput,
  logger?: Pick<Logger, "warn">,
): Promise<void> {
  if (!exporter) return;
  try {
    exporter.export(legTrace(input));
    await exporter.flush();
  } catch (error) {
    logger?.warn("a run leg's trace could not be exported", {
      executionId: input.executionId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}
