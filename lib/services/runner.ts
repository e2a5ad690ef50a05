/**
 * The runner: advances durable runs handed to it on the runs queue (`{ tenant, executionId }`).
 * For each message it takes the run's lease (owner: this invocation, CAS in the checkpoint),
 * advances the run from its checkpoint until it finishes, waits for input, or the invocation's
 * remaining time falls under the margin, renewing the lease while it works; then it records
 * the run (a finished one is published, as any execution), releases the lease and, when the
 * run goes on, re-enqueues it. Two runners never advance one run: a lease held by another
 * live runner fails the message (SQS delivers it again later); taking a lease bumps the
 * checkpoint's version, so a former holder's next write conflicts and it stops.
 * A message for a waiting or unknown run is acknowledged and changes nothing; one for a run
 * whose checkpoint finished but whose history record still says `running` (its runner died
 * between the two writes) records and publishes it, once, under the lease.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { MovaError, isMovaError } from "../errors.ts";
import type { RunMessage } from "../ports.ts";
import type { DocumentLoader } from "./document-loader.ts";
import { advanceLeg, recordFinishedCheckpoint, type RunDeps } from "./runs.ts";
import { FINISHED_STATUSES } from "./executions.ts";
import { handOff } from "./run-handoff.ts";
import { type ResumptionDeps, resumptionOf } from "./run-resumption.ts";

export interface RunnerDeps extends RunDeps, Pick<ResumptionDeps, "sessions" | "memoryBounds"> {
  loader: DocumentLoader;
  /** How long a lease lasts (RUN_LEASE_MS); renewed at a third of it while the runner works. */
  leaseMs: number;
  /** Stop advancing when the invocation has less than this left (RUNNER_MARGIN_MS). */
  marginMs: number;
}

export interface Invocation {
  /** The lease owner: the invocation's id (and the message's), unique per delivery. */
  owner: string;
  remainingMs(): number;
}

export type RunnerOutcome = "finished" | "paused" | "skipped" | "taken_over" | "finalised";

/** Another runner holds a live lease on the run: the message is retried later. */
export const runLeased = (executionId: string) =>
  new MovaError("run_leased", `the run ${executionId} is being advanced by another runner`, {
    retryable: true,
  });

/** Reads a runs-queue message body; undefined when it is not one. */
export function parseRunMessage(body: string): RunMessage | undefined {
  try {
    const value = JSON.parse(body) as Partial<RunMessage> | null;
    if (
      typeof value?.tenant === "string" &&
      value.tenant &&
      typeof value.executionId === "string" &&
      value.executionId
    )
      return { tenant: value.tenant, executionId: value.executionId };
  } catch {
    // not JSON: dropped below
  }
  return undefined;
}

/** Advances one run for one message. Throws when the message must be retried. */
export async function advanceQueuedRun(
  message: RunMessage,
  invocation: Invocation,
  deps: RunnerDeps,
): Promise<RunnerOutcome> {
  const { tenant, executionId } = message;
  const log = deps.logger;
  const current = await deps.checkpoints.get(tenant, executionId);
  const status = current?.state.status;
  if (status !== "running" && !(status !== undefined && FINISHED_STATUSES.has(status))) {
    log?.info("nothing to advance", { executionId, status: status ?? "unknown" });
    return "skipped";
  }
  const pause = status === "running" ? current?.state.pause : undefined;
  if (pause && pause.wakeAt > deps.clock.now() && !(await deps.runControl?.cancelRequested(message))) {
    // Early (a duplicate delivery): woken again when due; nothing is advanced now.
    await handOff(message, current?.state, deps);
    return "skipped";
  }
  const leased = await deps.checkpoints.acquireLease(
    tenant,
    executionId,
    invocation.owner,
    deps.leaseMs,
    deps.clock.now(),
  );
  if (!leased) throw runLeased(executionId);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await deps.checkpoints.releaseLease(tenant, executionId, invocation.owner).catch((error: unknown) => {
      log?.warn("lease not released (it expires by itself)", { executionId, error: String(error) });
    });
  };
  // Renewed on a timer, so a long step in flight keeps the lease too.
  const renewal = setInterval(
    () => {
      void deps.checkpoints
        .renewLease(tenant, executionId, invocation.owner, deps.leaseMs, deps.clock.now())
        .then((kept) => {
          if (!kept) log?.warn("lease lost; the next checkpoint write stops this runner", { executionId });
        })
        .catch(() => undefined);
    },
    Math.max(1, Math.floor(deps.leaseMs / 3)),
  );
  renewal.unref?.();
  try {
    const record = await deps.history.getExecution(tenant, executionId);
    if (!record) {
      log?.error("a checkpointed run has no history record; left as it is", { executionId });
      return "skipped";
    }
    // Re-read under the lease: the state may have moved on since the first read.
    if (FINISHED_STATUSES.has(leased.state.status)) {
      if (FINISHED_STATUSES.has(record.status)) return "skipped";
      log?.warn("a finished run was never recorded; recording it from its checkpoint", { executionId });
      const document = await deps.loader.loadVersion(tenant, record.document, record.documentVersion);
      await recordFinishedCheckpoint(record, leased.state, document, deps);
      return "finalised";
    }
    if (leased.state.status !== "running") return "skipped";
    const { header, document, prior, context } = await resumptionOf(record, deps, leased.state);
    const leg = await advanceLeg(
      {
        header,
        document,
        stored: { version: leased.version, state: leased.state },
        prior,
        shouldPause: () => invocation.remainingMs() < deps.marginMs,
        ...(context ? { context } : {}),
      },
      deps,
    );
    if (leg.checkpointError !== undefined) {
      if (isMovaError(leg.checkpointError, "run_conflict")) {
        log?.warn("the run was taken over by another runner; stopped", { executionId });
        released = true;
        return "taken_over";
      }
      // The last checkpoint stands; the message is delivered again and goes on from it.
      throw leg.checkpointError;
    }
    if (leg.kind === "finished") {
      await release();
      return "finished";
    }
    await release();
    await handOff(message, leg.state, deps);
    return "paused";
  } finally {
    clearInterval(renewal);
    await release();
  }
}

/** The runner's Lambda handler: one message after the other, failures reported per message. */
export function createRunnerHandler(deps: RunnerDeps) {
  return async (
    event: SQSEvent,
    context?: { awsRequestId?: string; getRemainingTimeInMillis?: () => number },
  ): Promise<SQSBatchResponse> => {
    const failures: SQSBatchResponse["batchItemFailures"] = [];
    const logger: Logger | undefined = deps.logger;
    for (const record of event.Records) {
      const message = parseRunMessage(record.body);
      if (!message) {
        logger?.error("not a runs-queue message; dropped", { messageId: record.messageId });
        continue;
      }
      const invocation: Invocation = {
        owner: `${context?.awsRequestId ?? "local"}:${record.messageId}`,
        remainingMs: () => context?.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY,
      };
      try {
        const outcome = await advanceQueuedRun(message, invocation, deps);
        logger?.info("run message handled", { executionId: message.executionId, outcome });
      } catch (error) {
        const level = isMovaError(error, "run_leased") ? "info" : "error";
        logger?.[level]("run message failed; it is retried", {
          executionId: message.executionId,
          error: error instanceof Error ? error.message : String(error),
        });
        failures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures: failures };
  };
}
