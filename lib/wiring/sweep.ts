/** The sweep function's wiring: the runtime's checkpoint store, runs queue and run control store. */
import type { Config } from "../config.ts";
import { sweepRuns } from "../services/sweep.ts";
import { type BuildRuntimeDepsOptions, buildRuntimeDeps } from "./runtime.ts";

/** What functions/sweep.ts and the local stack's sweep timer call. */
export function buildSweepHandler(config: Config, options: BuildRuntimeDepsOptions = {}) {
  const deps = buildRuntimeDeps(config, { serviceName: "mova-sweep", ...options });
  const runControl = deps.runControl;
  if (!runControl) throw new Error("the sweep needs the run control store");
  return () => sweepRuns({ ...deps, runControl });
}
