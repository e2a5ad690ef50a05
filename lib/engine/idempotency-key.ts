/**
 * The Idempotency-Key of a tool call: a hash of the execution, the step (a `parallel` branch is
 * named with its parallel step) and the step's visit number. Every try of one visit shares it,
 * and so does the visit run again after a crash (the checkpoint before it holds the same visit
 * count), while a loop's next visit gets a new one. Hashed so that it is short, fixed-length and
 * shows nothing of the execution's id to the tool.
 */
import { createHash } from "node:crypto";

/** `stepPath`: the step id, or the parallel step's id and the branch's. */
export function toolIdempotencyKey(executionId: string, stepPath: readonly string[], visit: number): string {
  // JSON keeps the parts apart whatever characters the ids hold.
  const identity = JSON.stringify(["mova-tool-call", executionId, stepPath, visit]);
  return createHash("sha256").update(identity).digest("base64url");
}
