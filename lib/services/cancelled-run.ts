/**
 * Ends a run as `cancelled`, with the reason it was cancelled for: its checkpoint and its
 * history record say so (published once like any finished run) and its scheduled wake-up is
 * dropped. The caller holds the run's lease (the checkpoint is written at the version leased),
 * so no worker is advancing it meanwhile. Used by a cancel (`POST /executions/{id}/cancel`)
 * and by an intent that interrupts a waiting run.
 */
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { RunState, StepError } from "../core/run.ts";
import type { RunCheckpointStore } from "../ports.ts";
import { recordExecution } from "./executions.ts";
import type { RunDeps, RunHeader } from "./runs.ts";

export interface LeasedRunToCancel {
  header: RunHeader;
  /** The leased checkpoint: its state and the version it was read at. */
  leased: { state: RunState; version: number };
  /** The steps recorded before, for the history record. */
  prior: { steps: ExecutionRecord["steps"]; path: string[] };
}

export async function endRunAsCancelled(
  run: LeasedRunToCancel,
  reason: StepError,
  deps: RunDeps & { checkpoints: RunCheckpointStore },
): Promise<void> {
  const { tenant, executionId } = run.header;
  const { state } = run.leased;
  const { next: _next, pause: _pause, waiting: _waiting, outputFrom: _from, ...rest } = state;
  const cancelled: RunState = { ...rest, status: "cancelled", error: reason };
  await deps.checkpoints.write(tenant, executionId, run.leased.version, cancelled);
  const finishedMs = deps.clock.now();
  await recordExecution(
    {
      ...run.header,
      status: "cancelled",
      startedAt: state.startedAt,
      finishedAt: new Date(finishedMs).toISOString(),
      durationMs: Math.max(0, finishedMs - Date.parse(state.startedAt)),
      path: run.prior.path,
      steps: run.prior.steps,
      unresolved: state.unresolved,
      offline: state.offline,
      error: reason,
      analysis: "published",
    },
    deps,
  );
  await deps.runControl?.unschedule({ tenant, executionId }).catch(() => undefined);
}
