/**
 * Control of durable runs from outside: an event delivered to a run paused at a `wait_event`
 * step (by the API or a signed callback URL), a cancel, and a redrive of a failed or timed-out
 * run. Each takes the run's lease before it changes anything, so it never races a runner: a
 * run another worker is advancing answers 409 `run_busy` (an event) or is stopped by that
 * worker (a cancel). A refused request changes nothing.
 */
import { randomUUID } from "node:crypto";
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { RunState } from "../core/run.ts";
import { newRunState } from "../engine/run-state.ts";
import { MovaError, notFound } from "../errors.ts";
import { EVENT_NAME } from "../mova/schema.ts";
import type { RunMessage, StoredRun } from "../ports.ts";
import { verifyCallback } from "./callback-signature.ts";
import type { DocumentLoader } from "./document-loader.ts";
import { endRunAsCancelled } from "./cancelled-run.ts";
import { FINISHED_STATUSES } from "./executions.ts";
import { handOff } from "./run-handoff.ts";
import { advanceLeg, headerOf, priorOf, type RunDeps, type RunOutcome, startRun } from "./runs.ts";
import { type ResumptionDeps, resumptionOf } from "./run-resumption.ts";

export interface RunControlDeps extends RunDeps, Pick<ResumptionDeps, "sessions" | "memoryBounds"> {
  loader: DocumentLoader;
  /** RUN_LEASE_MS: the lease an event's leg holds. */
  leaseMs: number;
}

export interface InlineOptions {
  /** SYNC_BUDGET_MS: the leg run in the request; the rest goes to the runner. */
  syncBudgetMs: number;
}

/** How long a cancel request outlives the moment it is made, beyond the run's deadline. */
const CANCEL_GRACE_MS = 3_600_000;
/** How long a cancel waits for the worker advancing the run to stop it, before answering 202. */
const CANCEL_WAIT_MS = 2_000;
const CANCEL_POLL_MS = 100;

const runBusy = (executionId: string) =>
  new MovaError("run_busy", `the run ${executionId} is being advanced right now; try again shortly`, {
    status: 409,
  });

function runControlOf(deps: RunDeps) {
  if (!deps.runControl) {
    throw new MovaError("run_control_unavailable", "this deployment has no run control store", {
      status: 503,
    });
  }
  return deps.runControl;
}

/** The run's checkpoint and history record; 404 for an unknown execution or another tenant's. */
async function loadRun(
  message: RunMessage,
  deps: RunDeps,
): Promise<{ stored: StoredRun; record: ExecutionRecord }> {
  const [stored, record] = await Promise.all([
    deps.checkpoints.get(message.tenant, message.executionId),
    deps.history.getExecution(message.tenant, message.executionId),
  ]);
  if (!stored || !record) throw notFound(`execution "${message.executionId}"`);
  return { stored, record };
}

/** Refuses an event the run, as it stands, does not wait for (409, nothing changed). */
function assertWaitsFor(state: RunState, event: string, nowMs: number): void {
  const pause = state.status === "running" ? state.pause : undefined;
  if (pause?.kind !== "event" || pause.event !== event) {
    const now = pause?.kind === "event" ? `it waits for "${pause.event}"` : `its status is ${state.status}`;
    throw new MovaError("not_waiting_for_event", `the run does not wait for the event "${event}": ${now}`, {
      status: 409,
    });
  }
  if (pause.timeoutAt !== undefined && nowMs >= pause.timeoutAt) {
    throw new MovaError("event_timeout", `the wait for the event "${event}" timed out`, { status: 409 });
  }
}

export interface EventRequest {
  tenant: string;
  executionId: string;
  event: string;
  payload: unknown;
}

/**
 * Delivers an event to a run paused at a `wait_event` step and advances it inline within the
 * budget (a run not finished by then is handed to the runner). 404 for an unknown execution,
 * 409 `not_waiting_for_event` / `event_timeout` / `run_busy`; nothing changes then.
 */
export async function deliverEvent(
  request: EventRequest,
  deps: RunControlDeps,
  options: InlineOptions,
): Promise<RunOutcome> {
  if (!EVENT_NAME.test(request.event)) {
    throw new MovaError("invalid_request", "an event name is 1 to 64 letters, digits, _ or -");
  }
  const message = { tenant: request.tenant, executionId: request.executionId };
  const { stored, record } = await loadRun(message, deps);
  const startedMs = deps.clock.now();
  assertWaitsFor(stored.state, request.event, startedMs);
  const owner = `event:${randomUUID()}`;
  const leased = await deps.checkpoints.acquireLease(
    message.tenant,
    message.executionId,
    owner,
    deps.leaseMs,
    startedMs,
  );
  if (!leased) throw runBusy(message.executionId);
  try {
    // Re-read under the lease: a runner or another event may have moved the run on meanwhile.
    assertWaitsFor(leased.state, request.event, deps.clock.now());
    const { header, document, prior, context } = await resumptionOf(record, deps, leased.state);
    const leg = await advanceLeg(
      {
        header,
        document,
        stored: { version: leased.version, state: leased.state },
        prior,
        ...(context ? { context } : {}),
        shouldPause: () => deps.clock.now() - startedMs >= options.syncBudgetMs,
        ...(deps.runDeadlineMs !== undefined ? { budgetMs: deps.runDeadlineMs } : {}),
        event: { name: request.event, payload: request.payload },
      },
      deps,
    );
    if (leg.kind === "running" && leg.checkpointError !== undefined) {
      // The event's step was not saved: the run still waits for it, the caller may send it again.
      if (leg.state === undefined || leg.state.pause?.kind === "event") throw leg.checkpointError;
    }
    await deps.checkpoints.releaseLease(message.tenant, message.executionId, owner).catch(() => false);
    if (leg.kind === "running") await handOff(message, leg.state, deps);
    return leg;
  } finally {
    await deps.checkpoints.releaseLease(message.tenant, message.executionId, owner).catch(() => false);
  }
}

/**
 * An event at a signed callback URL: the token is checked (forged: 403 `callback_invalid`,
 * expired: 410 `callback_expired`), claimed once (a replay: 409 `callback_replayed`), then
 * delivered as deliverEvent does. A delivery that fails gives the claim back.
 */
export async function deliverCallback(
  token: string,
  payload: unknown,
  deps: RunControlDeps,
  options: InlineOptions,
): Promise<RunOutcome> {
  const secret = deps.callbacks?.secret;
  if (!secret) {
    throw new MovaError("callback_invalid", "this deployment signs no callback URLs", { status: 403 });
  }
  const now = deps.clock.now();
  const claims = verifyCallback(token, secret, now);
  const control = runControlOf(deps);
  const key = `${encodeURIComponent(claims.tenant)}:${encodeURIComponent(claims.executionId)}:${claims.nonce}`;
  const ttlMs = Math.max(1, claims.expiresAt - now) + CANCEL_GRACE_MS;
  if (!(await control.claimOnce(key, ttlMs))) {
    throw new MovaError("callback_replayed", "this callback URL was used already", { status: 409 });
  }
  try {
    return await deliverEvent(
      { tenant: claims.tenant, executionId: claims.executionId, event: claims.event, payload },
      deps,
      options,
    );
  } catch (error) {
    await control.unclaim(key).catch(() => undefined);
    throw error;
  }
}

export interface CancelOutcome {
  executionId: string;
  /** `cancelled`, another final status the run reached first, or `running` (the cancel is on its way). */
  status: string;
}

/**
 * Cancels a run: 409 `run_finished` when it already ended. A run nobody advances (waiting,
 * queued) is cancelled here at once: its checkpoint and its history record say `cancelled`.
 * One being advanced is stopped by its worker, which polls the cancel request: between steps,
 * or by aborting the call in flight; this waits a moment for that, else answers `running`.
 */
export async function cancelRun(message: RunMessage, deps: RunControlDeps): Promise<CancelOutcome> {
  const control = runControlOf(deps);
  const { stored, record } = await loadRun(message, deps);
  if (FINISHED_STATUSES.has(stored.state.status)) {
    throw new MovaError("run_finished", `the run already ended (${stored.state.status})`, { status: 409 });
  }
  const now = deps.clock.now();
  await control.requestCancel(message, Math.max(0, stored.state.deadlineAt - now) + CANCEL_GRACE_MS);
  const owner = `cancel:${randomUUID()}`;
  const leased = await deps.checkpoints.acquireLease(
    message.tenant,
    message.executionId,
    owner,
    deps.leaseMs,
    now,
  );
  if (!leased) return waitForStop(message, deps);
  try {
    const { state } = leased;
    if (FINISHED_STATUSES.has(state.status))
      return { executionId: message.executionId, status: state.status };
    await endRunAsCancelled(
      { header: headerOf(record), leased, prior: await priorOf(deps.history, record) },
      { code: "cancelled", message: "the run was cancelled" },
      deps,
    );
    return { executionId: message.executionId, status: "cancelled" };
  } finally {
    await deps.checkpoints.releaseLease(message.tenant, message.executionId, owner).catch(() => false);
  }
}

async function waitForStop(message: RunMessage, deps: RunControlDeps): Promise<CancelOutcome> {
  const until = Date.now() + CANCEL_WAIT_MS;
  for (;;) {
    const stored = await deps.checkpoints.get(message.tenant, message.executionId);
    const status = stored?.state.status ?? "running";
    if (FINISHED_STATUSES.has(status) || Date.now() >= until)
      return { executionId: message.executionId, status };
    await new Promise((resolve) => setTimeout(resolve, CANCEL_POLL_MS));
  }
}

/**
 * Redrives a failed or timed-out run: a new execution (`redriveOf` the old) that starts at the
 * step the old one failed at, with the variables of its last checkpoint, and runs as any new
 * execution (inline within the budget, then the runner). 409 `not_redrivable` for a run that
 * did not fail or time out, `redrive_unavailable` when its checkpoint is gone (kept a day).
 */
export async function redriveRun(
  message: RunMessage,
  deps: RunControlDeps,
  options: InlineOptions & { respondAsync?: boolean },
): Promise<RunOutcome> {
  const record = await deps.history.getExecution(message.tenant, message.executionId);
  if (!record) throw notFound(`execution "${message.executionId}"`);
  if (record.status !== "failed" && record.status !== "timed_out") {
    throw new MovaError(
      "not_redrivable",
      `only a failed or timed-out run can be redriven; this one is ${record.status}`,
      {
        status: 409,
      },
    );
  }
  const stored = await deps.checkpoints.get(message.tenant, message.executionId);
  if (!stored || (stored.state.status !== "failed" && stored.state.status !== "timed_out")) {
    throw new MovaError(
      "redrive_unavailable",
      "the run's checkpoint is gone (a checkpoint is kept a day after its run ended), or the run never had one",
      { status: 409 },
    );
  }
  const document = await deps.loader.loadVersion(message.tenant, record.document, record.documentVersion);
  const failedAt = record.failedStepId ?? stored.state.path.at(-1);
  const initial = newRunState({
    document: document.parsed,
    protocol: stored.state.protocol,
    variables: stored.state.variables,
    now: deps.clock.now(),
  });
  if (failedAt !== undefined) initial.next = failedAt;
  initial.secretNames = [...stored.state.secretNames];
  return startRun(
    {
      tenant: message.tenant,
      document,
      protocol: stored.state.protocol,
      trigger: "api",
      initialState: initial,
      redriveOf: message.executionId,
      ...(record.intent !== undefined ? { intent: record.intent } : {}),
    },
    deps,
    { syncBudgetMs: options.syncBudgetMs, ...(options.respondAsync ? { respondAsync: true } : {}) },
  );
}
