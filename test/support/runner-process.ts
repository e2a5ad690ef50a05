/**
 * The runner as a process of its own, for tests that kill it: the local stack's runs-queue
 * poller in a loop, handing each message to the real runner handler, configured from the
 * environment it is started with. It prints "ready" once polling.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { loadConfig } from "../../lib/config.ts";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import { startQueuePoller } from "../../infra/local/sqs-poller.ts";

const config = loadConfig(process.env);
const logger = new Logger({ serviceName: "mova-runner-process", logLevel: "SILENT" });
const handler = buildRunnerHandler(config, { env: process.env, logger });
const queueUrl = process.env.RUNS_QUEUE_URL;
if (!queueUrl) throw new Error("RUNS_QUEUE_URL is not set");
const poller = startQueuePoller({
  sqs: createSqsClient(config, { env: process.env }),
  region: config.AWS_REGION,
  queueUrls: [queueUrl],
  handler: (event) =>
    handler(event, { awsRequestId: `pid-${process.pid}`, getRemainingTimeInMillis: () => 900_000 }),
  waitSeconds: 1,
  // A message whose run another runner still holds comes back soon.
  retryDelaySeconds: 0,
  logger,
});
process.stdout.write("ready\n");
process.on("SIGTERM", () => {
  void poller.stop().then(() => process.exit(0));
});
