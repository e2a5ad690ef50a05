/**
 * The tools a prompt step offers the model (function calling) and how one of the model's calls
 * runs: its arguments parsed and validated against the tool's schema (an invalid call goes back
 * to the model as a tool error and is not executed), then sent through the one tool path of
 * `tool_api` steps (templates, authentication, address rules, retries, timeouts, secrets) with
 * an Idempotency-Key that names the call.
 */
import { MovaError } from "../errors.ts";
import { getPath, type Resolver, stringifyValue } from "../mova/placeholders.ts";
import { type CompiledSchema, compileSchema } from "../mova/response-schema.ts";
import type { MovaDocument, PromptStep, Tool } from "../mova/schema.ts";
import { isBuiltinPath } from "../mova/steps.ts";
import { functionNames, type ToolFunction, toolFunction } from "../mova/tool-functions.ts";
import type { LlmToolCall, LlmToolDefinition } from "../ports.ts";
import type { ToolCallRecord } from "../core/run.ts";
import type { LiveRun } from "./live-run.ts";
import { resolveRetryPolicy } from "./retry.ts";
import { buildToolRequest } from "./tool-request.ts";
import { sendToolRequest } from "./steps/tool.ts";

interface OfferedTool {
  tool: Tool;
  fn: ToolFunction;
  compiled: CompiledSchema;
}

export interface OfferedTools {
  definitions: LlmToolDefinition[];
  /** By the function name the model calls. */
  byName: Map<string, OfferedTool>;
}

/** A tool result longer than this is cut before it goes back to the model. */
const MAX_RESULT_CHARS = 32_000;

/** Throws `unknown_reference` or `invalid_schema` for what the validator would refuse. */
export function offerTools(document: MovaDocument, step: PromptStep): OfferedTools {
  const ids = step.tools ?? [];
  const names = functionNames(ids);
  const definitions: LlmToolDefinition[] = [];
  const byName = new Map<string, OfferedTool>();
  for (const [name, id] of names) {
    const tool = document.tools.find((item) => item.id === id);
    if (!tool) throw new MovaError("unknown_reference", `the tool "${id}" does not exist`);
    const fn = toolFunction(tool);
    const compiled = compileSchema(fn.schema);
    if ("error" in compiled) {
      throw new MovaError("invalid_schema", `the parameters of tool "${id}" are not a usable JSON Schema`);
    }
    byName.set(name, { tool, fn, compiled });
    const description = tool.description ?? tool.name;
    definitions.push({ name, ...(description ? { description } : {}), parameters: fn.schema });
  }
  return { definitions, byName };
}

export interface ToolCallOutcome {
  record: ToolCallRecord;
  /** What goes back to the model as the tool message. */
  content: string;
  /** The tool's parsed answer, when the call succeeded. */
  result?: { toolId: string; value: unknown };
  /** The run was stopped (deadline, cancellation) while the call was in flight. */
  stopped?: boolean;
}

/** Runs one of the model's calls; the caller has made sure the tool is offered. */
export async function runToolCall(
  state: LiveRun,
  step: PromptStep,
  offered: OfferedTool,
  call: LlmToolCall,
  round: number,
  index: number,
): Promise<ToolCallOutcome> {
  const startedMs = state.clock.now();
  const { tool, fn, compiled } = offered;
  const record: ToolCallRecord = {
    round,
    callId: call.id,
    tool: tool.id,
    arguments: call.arguments,
    status: "invalid",
    attempts: 0,
    durationMs: 0,
  };
  const finish = (outcome: Omit<ToolCallOutcome, "record">): ToolCallOutcome => {
    record.durationMs = Math.max(0, state.clock.now() - startedMs);
    return { record, ...outcome };
  };
  const refuse = (message: string): ToolCallOutcome => {
    record.error = { code: "invalid_tool_arguments", message };
    return finish({ content: JSON.stringify({ error: message }) });
  };

  let args: unknown;
  try {
    args = JSON.parse(call.arguments === "" ? "{}" : call.arguments);
  } catch {
    return refuse("the arguments are not valid JSON");
  }
  record.arguments = args;
  const problems = compiled.problems(args);
  if (problems.length > 0) {
    return refuse(
      `invalid arguments: ${problems.map((p) => p.replace(/^the answer/, "the arguments")).join("; ")}`,
    );
  }
  const argumentValues = args as Record<string, unknown>;

  let request: ReturnType<typeof buildToolRequest>["request"];
  try {
    const built = buildToolRequest(
      { ...tool, parameters: fn.templates as Tool["parameters"] },
      argumentResolver(argumentValues, state.resolve),
      // Secrets reach the tool's headers, authentication and parameter values only, as in steps/tool.ts.
      {
        timeoutMs: tool.timeout_ms,
        secretResolve: argumentResolver(argumentValues, state.resolveWithSecrets),
      },
    );
    state.noteUnresolved(built.unresolved);
    for (const value of built.derivedSecrets) state.redactor.addValue(value);
    request = built.request;
  } catch (error) {
    record.status = "failed";
    record.error = {
      code: error instanceof MovaError ? error.code : "tool_error",
      message: (error as Error).message,
    };
    return finish({ content: JSON.stringify({ error: record.error.message }) });
  }
  // The model's values are placed as they are, never rendered as templates (an argument
  // holding "{secrets.KEY}" stays that text), and never replace a template parameter.
  if (request.method === "GET" || request.method === "DELETE") {
    const query = { ...request.query };
    for (const [key, value] of Object.entries(argumentValues)) {
      if (!Object.hasOwn(fn.templates, key) && value !== undefined) query[key] = stringifyValue(value);
    }
    if (Object.keys(query).length > 0) request.query = query;
  } else {
    const body = { ...argumentValues, ...(request.body as Record<string, unknown> | undefined) };
    request.body = body;
  }
  const idempotencyKey = state.idempotencyKey([step.id, `tool-call:${round}:${index}:${tool.id}`]);
  if (idempotencyKey !== undefined) request.idempotencyKey = idempotencyKey;

  const outcome = await sendToolRequest(
    state,
    request,
    resolveRetryPolicy(undefined, tool.retry),
    tool.timeout_ms,
  );
  record.attempts = outcome.attempts;
  if (!outcome.ok) {
    record.status = "failed";
    record.error = { code: outcome.failure.code, message: outcome.failure.message };
    if (outcome.failure.httpStatus !== undefined) record.httpStatus = outcome.failure.httpStatus;
    if (outcome.failure.aborted) return finish({ content: "", stopped: true });
    return finish({
      content: JSON.stringify({
        error: outcome.failure.message,
        ...(outcome.failure.httpStatus !== undefined && { status: outcome.failure.httpStatus }),
      }),
    });
  }
  record.status = "succeeded";
  record.httpStatus = outcome.value.status;
  const text =
    typeof outcome.value.body === "string" ? outcome.value.body : JSON.stringify(outcome.value.body ?? null);
  return finish({
    content: text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}…[cut]` : text,
    result: { toolId: tool.id, value: outcome.value.body },
  });
}

/**
 * The tool's templates read the model's arguments first (`{order_id}` in an endpoint), then the
 * run's variables; built-ins (`secrets.*`, `session.*`, …) are never taken from the model.
 */
function argumentResolver(args: Record<string, unknown>, resolve: Resolver): Resolver {
  return (path) => {
    if (isBuiltinPath(path)) return resolve(path);
    const dot = path.indexOf(".");
    const root = dot === -1 ? path : path.slice(0, dot);
    if (!Object.hasOwn(args, root)) return resolve(path);
    return dot === -1 ? args[root] : getPath(args[root], path.slice(dot + 1));
  };
}
