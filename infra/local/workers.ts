/**
 * Background workers of the local stack: what Lambda's event sources do in AWS (the SQS
 * poller that delivers execution events to the analysis handler, the batch-analysis
 * schedule). `npm run dev` starts every worker listed here after the API is up and stops
 * them first on shutdown. The analysis work registers its poller and schedule here; until
 * then the list is empty and events simply wait on the queue.
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

const workers: BackgroundWorker[] = [];

export function registerBackgroundWorker(worker: BackgroundWorker): void {
  if (workers.some((existing) => existing.name === worker.name)) {
    throw new Error(`a background worker named "${worker.name}" is already registered`);
  }
  workers.push(worker);
}

export function backgroundWorkers(): readonly BackgroundWorker[] {
  return workers;
}
