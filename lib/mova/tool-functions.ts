/**
 * A document tool offered to the model (a prompt step's `tools`, MOVA 2.2 SDK): the function
 * the model sees, built from the tool's `parameters`. Either the whole `parameters` is an
 * object schema (`{ "type": "object", "properties", "required" }`), or each entry that is a JSON
 * Schema property definition (`{ "type": "string", "description": "…" }`) is an argument the
 * model fills in (all of them required), while plain entries stay templates the model never
 * sees (keys, fixed values).
 */
import type { Tool } from "./schema.ts";

export interface ToolFunction {
  /** The JSON Schema of the arguments, an object schema. */
  schema: Record<string, unknown>;
  /** The parameters that are templates, rendered from the run's variables as for `tool_api`. */
  templates: Record<string, unknown>;
}

const SCHEMA_TYPES = new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);

function isPropertyDefinition(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const type = (value as Record<string, unknown>).type;
  if (typeof type === "string") return SCHEMA_TYPES.has(type);
  if (Array.isArray(type)) return type.every((item) => typeof item === "string" && SCHEMA_TYPES.has(item));
  return "enum" in value || "anyOf" in value || "oneOf" in value;
}

/** Whether `parameters` as a whole is the arguments' object schema. */
function isWholeSchema(parameters: Record<string, unknown>): boolean {
  return (
    parameters.type === "object" &&
    typeof parameters.properties === "object" &&
    parameters.properties !== null
  );
}

export function toolFunction(tool: Pick<Tool, "parameters">): ToolFunction {
  const parameters = tool.parameters ?? {};
  if (isWholeSchema(parameters)) return { schema: parameters, templates: {} };
  const properties: Record<string, unknown> = {};
  const templates: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (isPropertyDefinition(value)) properties[key] = value;
    else templates[key] = value;
  }
  return {
    schema: { type: "object", properties, required: Object.keys(properties), additionalProperties: false },
    templates,
  };
}

/**
 * The function name the model calls a tool by: providers allow letters, digits, `_` and `-`
 * (at most 64), so `calendar.create_event` is offered as `calendar_create_event`; a clash
 * gets a numbered suffix.
 */
export function functionNames(toolIds: readonly string[]): Map<string, string> {
  const byName = new Map<string, string>();
  for (const id of toolIds) {
    const base = id.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 60) || "tool";
    let name = base;
    for (let n = 2; byName.has(name); n += 1) name = `${base.slice(0, 60)}_${n}`;
    byName.set(name, id);
  }
  return byName;
}
