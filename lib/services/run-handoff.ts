/**
 * How a run that goes on is handed on, and how one being advanced notices a cancel request.
 * A run that can go on at once is enqueued for the runner; a run paused at a `wait` or
 * `wait_event` step is woken at its `wakeAt` by a delayed message (SQS, up to 15 minutes) or,
 * beyond, by the sweep. Every hand-off also schedules the run in the run control store, so the
 * sweep re-enqueues it if its message is lost or its runner dies for good.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { RunState } from "../core/run.ts";
import type { Clock, RunControlStore, RunMessage, RunQueue } from "../ports.ts";

/** SQS's longest DelaySeconds. */
export const MAX_QUEUE_DELAY_MS = 900_000;
/** A hand-off's schedule when no RUN_STALE_MS is given: 5 minutes. */
export const DEFAULT_RUN_STALE_MS = 300_000;
/** How often a runner asks whether the run it advances was cancelled. */
export const CANCEL_POLL_MS = 500;

export interface HandOffDeps {
  runQueue: RunQueue;
  clock: Clock;
  runControl?: RunControlStore | undefined;
  /** RUN_STALE_MS: how long after a hand-off the sweep looks at the run again. */
  runStaleMs?: number | undefined;
  logger?: Pick<Logger, "warn"> | undefined;
}

/** Hands a run that goes on (`state`: where it stands, when known) to the runner, now or at its wake-up. */
export async function handOff(
  message: RunMessage,
  state: RunState | undefined,
  deps: HandOffDeps,
): Promise<void> {
  const now = deps.clock.now();
  const staleMs = deps.runStaleMs ?? DEFAULT_RUN_STALE_MS;
  const pause = state?.status === "running" ? state.pause : undefined;
  if (!pause) {
    await scheduleNet(message, now + staleMs, deps);
    await deps.runQueue.enqueue(message);
    return;
  }
  const delayMs = Math.max(0, pause.wakeAt - now);
  if (delayMs > MAX_QUEUE_DELAY_MS) {
    // Beyond SQS's delay: the sweep enqueues it when it is due (at most a minute late).
    if (!deps.runControl) throw new Error("a wait longer than 15 minutes needs the run control store");
    await deps.runControl.schedule(message, pause.wakeAt);
    return;
  }
  await scheduleNet(message, pause.wakeAt + staleMs, deps);
  await deps.runQueue.enqueue(message, { delaySeconds: Math.ceil(delayMs / 1000) });
}

/**
 * The sweep's safety net for a run whose message is on the queue: Redis unreachable (the very
 * outage that may have paused the run) must not keep the message from the queue, which is
 * what hands the run on; without the net the run is as it was before the sweep existed.
 */
async function scheduleNet(message: RunMessage, atMs: number, deps: HandOffDeps): Promise<void> {
  try {
    await deps.runControl?.schedule(message, atMs);
  } catch (error) {
    deps.logger?.warn("the run could not be put in the sweep's schedule; it is enqueued all the same", {
      executionId: message.executionId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Watches for a cancel request while a run is advanced: asked at once and every
 * CANCEL_POLL_MS, so a run stops between steps or aborts its call in flight within that.
 */
export function watchCancel(
  message: RunMessage,
  runControl: RunControlStore | undefined,
  given: AbortSignal | undefined,
): { signal: AbortSignal | undefined; ready: Promise<void>; stop(): void } {
  if (!runControl) return { signal: given, ready: Promise.resolve(), stop: () => undefined };
  const controller = new AbortController();
  const ask = async () => {
    try {
      if (await runControl.cancelRequested(message)) controller.abort(new Error("the run was cancelled"));
    } catch {
      // An unreachable store cannot cancel: the run goes on, and the next poll asks again.
    }
  };
  const timer = setInterval(() => void ask(), CANCEL_POLL_MS);
  timer.unref?.();
  return {
    signal: given ? AbortSignal.any([given, controller.signal]) : controller.signal,
    ready: ask(),
    stop: () => clearInterval(timer),
  };
}
