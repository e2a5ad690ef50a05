/** The trigger function's wiring: the runtime's adapters, the trigger service, its Lambda handler. */
import type { Config } from "../config.ts";
import { createTriggerHandler, createTriggerService, type TriggerHandler } from "../services/triggers.ts";
import { type BuildRuntimeDepsOptions, buildRuntimeDeps } from "./runtime.ts";

/** What functions/trigger.ts and the local stack's trigger poller call. */
export function buildTriggerHandler(config: Config, options: BuildRuntimeDepsOptions = {}): TriggerHandler {
  const deps = buildRuntimeDeps(config, { serviceName: "mova-trigger", ...options });
  const service = createTriggerService({
    ...deps,
    runDeadlineMs: config.RUN_DEADLINE_MS,
    syncBudgetMs: config.SYNC_BUDGET_MS,
  });
  return createTriggerHandler(service, deps.logger);
}
