/**
 * Control of durable runs: an event for a run paused at a `wait_event` step (with the API key,
 * or at the signed callback URL, whose token is the credential), cancel and redrive.
 */
import * as z from "zod";
import type { ApiDeps } from "./deps.ts";
import type { DocumentLoader } from "../services/document-loader.ts";
import { type RunOutcome, runDepsOf } from "../services/runs.ts";
import {
  type RunControlDeps,
  cancelRun,
  deliverCallback,
  deliverEvent,
  redriveRun,
} from "../services/run-control.ts";
import type { ApiRequest, ApiResponse, RouteSpec } from "./route.ts";
import {
  CancelResponse,
  ErrorResponse,
  EventName,
  EventPayload,
  ExecutionId,
  ExecutionResponse,
  RunAcceptedResponse,
} from "./schemas.ts";

const CallbackToken = z.string().min(1).max(2048);

export function runControlRoutes(deps: ApiDeps, loader: DocumentLoader): RouteSpec[] {
  const controlDeps = (request: ApiRequest): RunControlDeps => ({
    ...runDepsOf(deps, request.logger, deps.config.RUN_DEADLINE_MS),
    loader,
    leaseMs: deps.config.RUN_LEASE_MS,
    sessions: deps.sessions,
    memoryBounds: { maxTurns: deps.config.MEMORY_MAX_TURNS, maxBytes: deps.config.MEMORY_MAX_BYTES },
  });
  const inline = { syncBudgetMs: deps.config.SYNC_BUDGET_MS };

  /** A run that finished answers its result (200); one that goes on answers 202 with `Location`. */
  function answer(outcome: RunOutcome): ApiResponse {
    if (outcome.kind === "running") {
      return {
        status: 202,
        body: { executionId: outcome.executionId, status: "running" },
        headers: { location: `/executions/${encodeURIComponent(outcome.executionId)}` },
      };
    }
    const { state: _state, checkpointError: _error, suspended: _suspended, ...visible } = outcome.result;
    return {
      status: 200,
      body: { executionId: outcome.executionId, ...visible, analysis: outcome.record.analysis },
    };
  }

  const advanced = {
    200: { description: "the run went on and finished: its result", schema: ExecutionResponse },
    202: {
      description: "the run goes on (past SYNC_BUDGET_MS, or it waits again): `Location` is /executions/{id}",
      schema: RunAcceptedResponse,
    },
  };

  return [
    {
      method: "POST",
      path: "/executions/{id}/events/{name}",
      operationId: "sendExecutionEvent",
      summary:
        "Deliver an event to a run paused at a `wait_event` step; its JSON body goes to the step's output",
      auth: true,
      params: { id: ExecutionId, name: EventName },
      body: EventPayload,
      responses: {
        ...advanced,
        404: { description: "not_found: no such execution (of this tenant)", schema: ErrorResponse },
        409: {
          description:
            "not_waiting_for_event (the run waits for no such event), event_timeout (its wait timed out) or run_busy (it is being advanced right now); nothing changed",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<unknown>) {
        const { id, name } = request.params as { id: string; name: string };
        request.logger.appendPersistentKeys({ executionId: id });
        const outcome = await deliverEvent(
          { tenant: request.tenant, executionId: id, event: name, payload: request.body },
          controlDeps(request),
          inline,
        );
        return answer(outcome);
      },
    },
    {
      method: "POST",
      path: "/callbacks/{token}",
      operationId: "deliverCallback",
      summary:
        "A signed callback URL (`{callback.EVENT}`): delivers its event to its execution; the token is the credential (no API key)",
      auth: false,
      params: { token: CallbackToken },
      body: EventPayload,
      responses: {
        ...advanced,
        403: {
          description: "callback_invalid: a forged or altered URL; nothing changed",
          schema: ErrorResponse,
        },
        409: {
          description:
            "callback_replayed (the URL was used already), not_waiting_for_event, event_timeout or run_busy; nothing changed",
          schema: ErrorResponse,
        },
        410: {
          description: "callback_expired: the run's deadline passed; nothing changed",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<unknown>) {
        const outcome = await deliverCallback(
          request.params.token as string,
          request.body,
          controlDeps(request),
          inline,
        );
        return answer(outcome);
      },
    },
    {
      method: "POST",
      path: "/executions/{id}/cancel",
      operationId: "cancelExecution",
      summary: "Cancel a run: it stops between steps and its call in flight is aborted; status `cancelled`",
      auth: true,
      params: { id: ExecutionId },
      responses: {
        200: {
          description: "the run is cancelled (or ended otherwise first: its status)",
          schema: CancelResponse,
        },
        202: {
          description:
            "the worker advancing the run has not stopped it yet; it will (poll GET /executions/{id})",
          schema: CancelResponse,
        },
        404: { description: "not_found: no such execution (of this tenant)", schema: ErrorResponse },
        409: { description: "run_finished: the run already ended", schema: ErrorResponse },
      },
      async handle(request) {
        const id = request.params.id as string;
        const outcome = await cancelRun({ tenant: request.tenant, executionId: id }, controlDeps(request));
        const status = outcome.status === "running" ? 202 : 200;
        return { status, body: outcome };
      },
    },
    {
      method: "POST",
      path: "/executions/{id}/redrive",
      operationId: "redriveExecution",
      summary:
        "Redrive a failed or timed-out run: a new execution (`redriveOf`) starting at the failed step with the checkpointed variables",
      auth: true,
      params: { id: ExecutionId },
      headers: [{ name: "Prefer", description: "`respond-async`: answer 202 at once" }],
      responses: {
        ...advanced,
        404: { description: "not_found: no such execution (of this tenant)", schema: ErrorResponse },
        409: {
          description:
            "not_redrivable (the run did not fail or time out) or redrive_unavailable (its checkpoint is gone)",
          schema: ErrorResponse,
        },
      },
      async handle(request) {
        const id = request.params.id as string;
        const respondAsync = /(^|[,;\s])respond-async\b/i.test(request.headers.prefer ?? "");
        const outcome = await redriveRun({ tenant: request.tenant, executionId: id }, controlDeps(request), {
          ...inline,
          respondAsync,
        });
        request.logger.appendPersistentKeys({ executionId: outcome.executionId });
        return answer(outcome);
      },
    },
  ];
}
