/**
 * A protocol's `success` criteria: whether a completed run achieved its purpose, judged on
 * its final variables (and its output, as `output`, when no variable has that name). A run
 * that did not complete has no outcome; a protocol without criteria gives `unknown`.
 */
import { evaluateConditions } from "./conditions.ts";
import { getPath, type Resolver } from "./placeholders.ts";
import type { Protocol } from "./schema.ts";

export const RUN_OUTCOMES = ["succeeded", "unsuccessful", "unknown"] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

export function runOutcome(
  protocol: Pick<Protocol, "success"> | undefined,
  variables: Record<string, unknown>,
  output?: unknown,
): RunOutcome {
  const criteria = protocol?.success;
  if (criteria === undefined || criteria.length === 0) return "unknown";
  const resolve: Resolver = (path) => {
    const value = getPath(variables, path);
    if (value !== undefined) return value;
    if (path === "output") return output;
    if (path.startsWith("output.")) return getPath(output, path.slice("output.".length));
    return undefined;
  };
  return evaluateConditions(criteria, resolve) ? "succeeded" : "unsuccessful";
}
