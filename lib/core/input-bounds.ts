/**
 * Bounds on what callers and tools hand a run: variables, session data, event payloads,
 * feedback, tool responses. A value nested deeper than the bound would later break code that
 * walks it (Redis's Lua JSON decoder stops at 1,000 levels; recursive copies overflow the
 * stack), and one too large would be copied into every checkpoint and history record. Both are
 * measured without recursion, and refused before anything is written: `input_too_deep` (400)
 * or `input_too_large` (413).
 */
import { MovaError } from "../errors.ts";

export interface InputBounds {
  /** Levels of objects and lists; a scalar is depth 0, `{}` depth 1. */
  maxDepth: number;
  /** Bytes of the value's JSON (UTF-8). */
  maxBytes: number;
}

export const DEFAULT_INPUT_BOUNDS: InputBounds = { maxDepth: 32, maxBytes: 65_536 };

/** The nesting depth of a JSON-like value, counted without recursion; stops once past `limit`. */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== "object") continue;
    const here = depth + 1;
    if (here > deepest) deepest = here;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (child !== null && typeof child === "object") stack.push([child, here]);
    }
  }
  return deepest;
}

/** Throws `input_too_deep` or `input_too_large` when `value` (named `what` in the message) is out of bounds. */
export function assertBoundedInput(
  value: unknown,
  what: string,
  bounds: InputBounds = DEFAULT_INPUT_BOUNDS,
): void {
  if (value === undefined) return;
  const depth = jsonDepth(value, bounds.maxDepth);
  if (depth > bounds.maxDepth) {
    throw new MovaError("input_too_deep", `${what} is nested more than ${bounds.maxDepth} levels deep`, {
      details: { maxDepth: bounds.maxDepth },
    });
  }
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "", "utf8");
  if (bytes > bounds.maxBytes) {
    throw new MovaError("input_too_large", `${what} is over ${bounds.maxBytes} bytes of JSON`, {
      details: { maxBytes: bounds.maxBytes },
    });
  }
}
