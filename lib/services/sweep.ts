/**
 * The scheduled sweep (every minute): looks at the runs whose schedule in the run control
 * store is due and hands on those that need it. A paused run whose wait is over (beyond the
 * 15 minutes an SQS delay covers) is enqueued; a run handed to the runner that nobody
 * advanced for RUN_STALE_MS (a lost message, a runner that died for good, a restarted local
 * stack) is enqueued again; a run that ended or waits for input is dropped from the schedule.
 * Enqueuing twice is harmless: the runner takes the run's lease, and a message for a run that
 * is not due or not running changes nothing.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Clock, RunCheckpointStore, RunControlStore, RunQueue } from "../ports.ts";
import { DEFAULT_RUN_STALE_MS } from "./run-handoff.ts";

export interface SweepDeps {
  checkpoints: RunCheckpointStore;
  runQueue: RunQueue;
  runControl: RunControlStore;
  clock: Clock;
  logger?: Logger;
  runStaleMs?: number;
}

export interface SweepReport {
  enqueued: number;
  rescheduled: number;
  dropped: number;
  failed: number;
}

const BATCH = 100;
/** A sweep stops after this many runs; the next one goes on (it runs every minute). */
const MAX_PER_SWEEP = 5_000;

export async function sweepRuns(deps: SweepDeps): Promise<SweepReport> {
  const report: SweepReport = { enqueued: 0, rescheduled: 0, dropped: 0, failed: 0 };
  const staleMs = deps.runStaleMs ?? DEFAULT_RUN_STALE_MS;
  const now = deps.clock.now();
  const seen = new Set<string>();
  while (seen.size < MAX_PER_SWEEP) {
    const due = (await deps.runControl.due(now, BATCH)).filter(
      ({ message }) => !seen.has(`${message.tenant}\n${message.executionId}`),
    );
    if (due.length === 0) break;
    for (const { message } of due) {
      seen.add(`${message.tenant}\n${message.executionId}`);
      try {
        const stored = await deps.checkpoints.get(message.tenant, message.executionId);
        if (stored?.state.status !== "running") {
          await deps.runControl.unschedule(message);
          report.dropped += 1;
          continue;
        }
        const pause = stored.state.pause;
        if (pause && pause.wakeAt > now) {
          await deps.runControl.schedule(message, pause.wakeAt);
          report.rescheduled += 1;
          continue;
        }
        if (!pause && stored.lease && stored.lease.expiresAt > now) {
          // A runner holds it: looked at again when its lease would have been stale.
          await deps.runControl.schedule(message, stored.lease.expiresAt + staleMs);
          report.rescheduled += 1;
          continue;
        }
        await deps.runControl.schedule(message, now + staleMs);
        await deps.runQueue.enqueue(message);
        report.enqueued += 1;
      } catch (error) {
        // Left scheduled as it was: the next sweep tries again.
        report.failed += 1;
        deps.logger?.warn("sweep: a run could not be handed on", {
          executionId: message.executionId,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }
  if (report.enqueued + report.rescheduled + report.dropped + report.failed > 0) {
    deps.logger?.info("sweep done", { ...report });
  }
  return report;
}
