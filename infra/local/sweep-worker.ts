/**
 * The local stand-in for the sweep's schedule: a timer (SWEEP_INTERVAL_MS, a minute by default)
 * calling the real sweep handler, one sweep at a time.
 */
import { buildSweepHandler } from "../../lib/wiring/sweep.ts";
import type { BackgroundWorker } from "./workers.ts";

export const sweepWorker: BackgroundWorker = {
  name: "sweep",
  describe: (context) => `Timer: every ${context.config.SWEEP_INTERVAL_MS / 1000} s → sweep handler`,
  async start(context) {
    const sweep = buildSweepHandler(context.config, { env: context.env, logger: context.logger });
    let running: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      if (running) return;
      running = sweep()
        .catch((error: unknown) => context.logger.warn("sweep failed", { error: String(error) }))
        .finally(() => {
          running = undefined;
        });
    }, context.config.SWEEP_INTERVAL_MS);
    return {
      async stop() {
        clearInterval(timer);
        await running;
      },
    };
  },
};
