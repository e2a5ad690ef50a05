/**
 * Structured output of a prompt step (`response_schema`): the response format asked of the
 * model, the answer parsed and validated, and the message that asks the model once to repair
 * an invalid answer.
 */
import { type CompiledSchema, compileSchema, isStrictCompatible } from "../mova/response-schema.ts";
import type { LlmResponseFormat } from "../ports.ts";
import { MovaError } from "../errors.ts";

export interface StructuredOutput {
  format: LlmResponseFormat;
  compiled: CompiledSchema;
}

/** The step's response format; throws `invalid_schema` for a schema the validator would refuse. */
export function structuredOutput(stepId: string, schema: Record<string, unknown>): StructuredOutput {
  const compiled = compileSchema(schema);
  if ("error" in compiled) {
    throw new MovaError(
      "invalid_schema",
      `the response_schema is not a usable JSON Schema: ${compiled.error}`,
    );
  }
  // Providers allow names of letters, digits, `_` and `-`, at most 64 long.
  const name = `${stepId.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 56)}_answer`;
  return { format: { name, schema, strict: isStrictCompatible(schema) }, compiled };
}

export type ParsedAnswer = { ok: true; value: unknown } | { ok: false; problems: string[] };

// Some models wrap JSON in a Markdown fence even when asked for JSON alone.
const FENCED = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/;

export function parseAnswer(text: string, compiled: CompiledSchema): ParsedAnswer {
  let value: unknown;
  try {
    value = JSON.parse(FENCED.exec(text)?.[1] ?? text);
  } catch {
    return { ok: false, problems: ["the answer is not valid JSON"] };
  }
  const problems = compiled.problems(value);
  return problems.length === 0 ? { ok: true, value } : { ok: false, problems };
}

export function repairRequest(problems: string[]): string {
  return `Your answer does not match the required JSON Schema: ${problems.join("; ")}. Answer again with only the corrected JSON.`;
}
