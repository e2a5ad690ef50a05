/**
 * The sweep Lambda (scheduled every minute): enqueues runs whose wait is over and runs whose
 * lease expired long ago. Wiring only: see lib/wiring/sweep.ts and lib/services/sweep.ts.
 */
import { loadConfig } from "../lib/config.ts";
import { buildSweepHandler } from "../lib/wiring/sweep.ts";

let sweepHandler: ReturnType<typeof buildSweepHandler> | undefined;

export const handler = async () => {
  sweepHandler ??= buildSweepHandler(loadConfig());
  return sweepHandler();
};
