/**
 * The trigger Lambda: run requests from EventBridge (`mova.run.requested`) and from the
 * trigger queue (SQS, partial batch responses). Wiring only: see lib/wiring/trigger.ts and lib/services/triggers.ts.
 */
import type { Context } from "aws-lambda";
import { loadConfig } from "../lib/config.ts";
import type { TriggerEvent, TriggerHandler } from "../lib/services/triggers.ts";
import { buildTriggerHandler } from "../lib/wiring/trigger.ts";

let triggerHandler: TriggerHandler | undefined;

export const handler = (event: TriggerEvent, context: Context) => {
  triggerHandler ??= buildTriggerHandler(loadConfig());
  return triggerHandler(event, context);
};
