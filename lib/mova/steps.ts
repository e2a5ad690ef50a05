/**
 * Small helpers over documents and steps shared by the validator and the engine, so both
 * agree on where a step's result lives.
 */
import type { Step } from "./schema.ts";

/** The first-segment names a document may read without any step setting them. */
const BUILTIN_VARIABLES = ["user_input", "intent", "now"] as const;
/** Namespaces readable as `name.*`. */
const BUILTIN_NAMESPACES = ["session", "profile", "secrets", "error", "execution", "callback"] as const;

/**
 * The variable a step stores its result in: a `prompt` step its `output`, else
 * `prompt_response_<id>` (as MOVA 2.2 does); a `tool_api` step its `output`, else
 * `<id>_result`; an `input` step its `variable`; a `wait_event` step its `output`, else
 * `<id>_event`. Other actions store nothing.
 */
export function defaultOutputVariable(
  step: Pick<Step, "action" | "id"> & Partial<Record<string, unknown>>,
): string | undefined {
  switch (step.action) {
    case "prompt":
      return typeof step.output === "string" && step.output ? step.output : `prompt_response_${step.id}`;
    case "tool_api":
      return typeof step.output === "string" && step.output ? step.output : `${step.id}_result`;
    case "input":
      return typeof step.variable === "string" && step.variable ? step.variable : undefined;
    case "wait_event":
      return typeof step.output === "string" && step.output ? step.output : `${step.id}_event`;
    case "call":
    case "foreach":
      return typeof step.output === "string" && step.output ? step.output : `${step.id}_result`;
    default:
      return undefined;
  }
}

/** Whether a placeholder or condition path reads a built-in (`user_input`, `session.*`, …). */
export function isBuiltinPath(path: string): boolean {
  const first = path.split(".")[0] ?? "";
  return (
    (BUILTIN_VARIABLES as readonly string[]).includes(first) ||
    (BUILTIN_NAMESPACES as readonly string[]).includes(first)
  );
}

/**
 * The step after the one at `index` when it names no `next_step`: the next of the list in
 * the sequential flow, none (the run ends) in the classes form's explicit flow.
 */
export function followingStepId(
  protocol: {
    flow?: "sequential" | "explicit" | undefined;
    steps: ReadonlyArray<Pick<Step, "id" | "next_step">>;
  },
  index: number,
): string | undefined {
  const step = protocol.steps[index];
  if (step?.next_step !== undefined) return step.next_step;
  if (protocol.flow === "explicit") return undefined;
  return protocol.steps[index + 1]?.id;
}
