/**
 * Background workers of the local stack: what Lambda's event sources do in AWS (the SQS
 * pollers that deliver execution events, analysis runs and trigger requests to their
 * handlers, the batch-analysis schedule). `npm run dev` starts the workers of its list after
 * the API is up and stops them first on shutdown.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Config } from "../../lib/config.ts";

export interface WorkerContext {
  /** The local stack's environment (endpoints, table names, queue URLs). */
  env: Record<string, string>;
  config: Config;
  logger: Logger;
}

export interface RunningWorker {
  stop(): Promise<void>;
}

export interface BackgroundWorker {
  name: string;
  /** One line for the startup banner, e.g. "SQS poller: mova-analysis → analyze handler". */
  describe?(context: WorkerContext): string;
  start(context: WorkerContext): Promise<RunningWorker>;
}
