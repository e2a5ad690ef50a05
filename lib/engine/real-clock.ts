/** The clock a run uses when its caller supplies none: the wall clock and an abortable sleep. */
import type { Clock } from "../ports.ts";

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Used when the caller supplies no clock. */
export const realClock: Clock = { now: () => Date.now(), sleep };
