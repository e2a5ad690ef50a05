/**
 * A session's waiting run interrupted by a message that matches an intent with `interrupts`:
 * the run is cancelled (checkpoint and history record `cancelled`, error code `interrupted`)
 * under its own lease, published once like any finished run, before the intent's protocol
 * starts as the session's new run.
 */
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { RunCheckpointStore } from "../ports.ts";
import { endRunAsCancelled } from "./cancelled-run.ts";
import type { RunDeps, RunHeader } from "./runs.ts";

/** The error a run interrupted by an intent ends with: its reason. */
export const interruptedError = (intent: string) => ({
  code: "interrupted",
  message: `the run was cancelled: the message matched the intent "${intent}", which interrupts it`,
});

export interface InterruptedRun {
  header: RunHeader;
  prior: { steps: ExecutionRecord["steps"]; path: string[] };
}

/**
 * Cancels the waiting run for `intent`. Answers false, having changed nothing, when the run
 * cannot be leased or no longer waits for input (the caller answers 409 then).
 */
export async function interruptWaitingRun(
  run: InterruptedRun,
  intent: string,
  owner: string,
  deps: RunDeps & { leaseMs: number; checkpoints: RunCheckpointStore },
): Promise<boolean> {
  const { tenant, executionId } = run.header;
  const leased = await deps.checkpoints.acquireLease(
    tenant,
    executionId,
    owner,
    deps.leaseMs,
    deps.clock.now(),
  );
  if (!leased) return false;
  try {
    if (leased.state.status !== "waiting_input") return false;
    await endRunAsCancelled({ ...run, leased }, interruptedError(intent), deps);
    return true;
  } finally {
    await deps.checkpoints.releaseLease(tenant, executionId, owner).catch(() => false);
  }
}
