/**
 * What the Redis and the in-process checkpoint stores share: the key of a run, the size limit
 * of its state, how long a checkpoint is kept, and the errors a store answers with.
 */
import { MovaError } from "../errors.ts";
import type { RunState } from "../core/run.ts";

export const DEFAULT_RUN_KEY_PREFIX = "mova:run:";

/** How long a checkpoint outlives its run's deadline (a finished run's: its last write). */
export const DEFAULT_RUN_RETENTION_MS = 86_400_000;

const FINISHED = new Set(["completed", "failed", "timed_out", "cancelled"]);

/**
 * `mova:run:<tenant>:<executionId>`. The parts are URI-encoded so that a tenant or id holding
 * `:` cannot reach another tenant's key; ordinary names are unchanged.
 */
export function runKey(tenant: string, executionId: string, prefix = DEFAULT_RUN_KEY_PREFIX): string {
  return `${prefix}${encodeURIComponent(tenant)}:${encodeURIComponent(executionId)}`;
}

/** The state as stored (JSON), or MovaError `state_too_large` over `maxStateBytes`: nothing is written then. */
export function encodeRunState(state: RunState, maxStateBytes: number): string {
  const json = JSON.stringify(state);
  // UTF-8 is at most 3 bytes per UTF-16 unit: most states are under the limit without counting.
  if (json.length * 3 <= maxStateBytes) return json;
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes > maxStateBytes) {
    throw new MovaError(
      "state_too_large",
      `the run's state is ${bytes} bytes, over the ${maxStateBytes}-byte limit (MAX_RUN_STATE_BYTES)`,
      { details: { bytes, limit: maxStateBytes } },
    );
  }
  return json;
}

/** Milliseconds the checkpoint lives from `nowMs`: until the run's deadline (or now, once it finished) plus retention. */
export function checkpointTtlMs(state: RunState, nowMs: number, retentionMs: number): number {
  const until = FINISHED.has(state.status) ? nowMs : Math.max(state.deadlineAt, nowMs);
  return Math.max(1, Math.ceil(until + retentionMs - nowMs));
}

export function assertPositive(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 1) throw new RangeError(`${name} must be at least 1, got ${value}`);
}

export const runExists = (executionId: string) =>
  new MovaError("run_exists", `the run ${executionId} already has a checkpoint`);

export const runConflict = (executionId: string) =>
  new MovaError(
    "run_conflict",
    `the run ${executionId} was changed by another worker (its checkpoint version moved on); nothing was written`,
  );

export const runNotFound = (executionId: string) =>
  new MovaError("run_not_found", `the run ${executionId} has no checkpoint`);
