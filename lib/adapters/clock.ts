/** The real clock: wall time, and sleeps that end early (rejecting) when the run is cancelled. */
import { MovaError } from "../errors.ts";
import type { Clock } from "../ports.ts";

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new MovaError("cancelled", "the wait was cancelled"));
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(new MovaError("cancelled", "the wait was cancelled"));
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        Math.max(0, Number.isFinite(ms) ? ms : 0),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};
