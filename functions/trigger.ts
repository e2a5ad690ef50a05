/**
 * The trigger Lambda: run requests from EventBridge (`mova.run.requested`) and from the
 * trigger queue (SQS, partial batch responses). Wiring only: see lib/wiring/trigger.ts and lib/services/triggers.ts.
 */
import type { Context } from "aws-lambda";
import { loadDeployedConfig } from "../lib/wiring/deployed-config.ts";
import { traced } from "../lib/wiring/tracing.ts";
import type { TriggerEvent, TriggerHandler } from "../lib/services/triggers.ts";
import { buildTriggerHandler } from "../lib/wiring/trigger.ts";

let triggerHandler: TriggerHandler | undefined;

export const handler = traced("mova-trigger", async (event: TriggerEvent, context: Context) => {
  triggerHandler ??= buildTriggerHandler(await loadDeployedConfig());
  return triggerHandler(event, context);
});
