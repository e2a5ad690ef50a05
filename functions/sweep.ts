/**
 * The sweep Lambda (scheduled every minute): enqueues runs whose wait is over and runs whose
 * lease expired long ago. Wiring only: see lib/wiring/sweep.ts and lib/services/sweep.ts.
 */
import { loadDeployedConfig } from "../lib/wiring/deployed-config.ts";
import { traced } from "../lib/wiring/tracing.ts";
import { buildSweepHandler } from "../lib/wiring/sweep.ts";

let sweepHandler: ReturnType<typeof buildSweepHandler> | undefined;

export const handler = traced("mova-sweep", async () => {
  sweepHandler ??= buildSweepHandler(await loadDeployedConfig());
  return sweepHandler();
});
