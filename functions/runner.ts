/**
 * The runner Lambda: advances durable runs from the runs queue (SQS, partial batch responses)
 * under a lease, until they finish or its remaining time falls under RUNNER_MARGIN_MS.
 * Wiring only: see lib/wiring/runner.ts and lib/services/runner.ts.
 */
import type { Context, SQSEvent } from "aws-lambda";
import { loadDeployedConfig } from "../lib/wiring/deployed-config.ts";
import { traced } from "../lib/wiring/tracing.ts";
import { buildRunnerHandler } from "../lib/wiring/runner.ts";

let runnerHandler: ReturnType<typeof buildRunnerHandler> | undefined;

export const handler = traced("mova-runner", async (event: SQSEvent, context: Context) => {
  runnerHandler ??= buildRunnerHandler(await loadDeployedConfig());
  return runnerHandler(event, context);
});
