/**
 * POST /executions (with Idempotency-Key), GET /executions/{id} with its steps and its child
 * runs, and the per-protocol history query. A long run's answer carries its summary and its first page of
 * steps, with `stepsCursor` for GET /executions/{id}/steps to read the rest.
 */
import * as z from "zod";
import { unknownProtocol } from "../services/executions.ts";
import { type RunOutcome, startRun } from "../services/runs.ts";
import { startSessionRun } from "../services/session-runs.ts";
import type { ApiDeps } from "./deps.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import { PAGE_MAX_STEPS, SUMMARY_MAX_PATH_IDS } from "../core/record-size.ts";
import type { DocumentLoader } from "../services/document-loader.ts";
import { loadRouted } from "../services/traffic-split.ts";
import { invalidRequest, notFound, StoreUnavailableError } from "../errors.ts";
import { IDEMPOTENCY_KEY } from "../ports.ts";
import type { ApiRequest, ApiResponse, RouteSpec } from "./route.ts";
import {
  ChildPageResponse,
  ChildrenQuery,
  CreateExecutionRequest,
  DocumentName,
  ErrorResponse,
  ExecutionId,
  ExecutionPageResponse,
  ExecutionRecordResponse,
  ExecutionResponse,
  ExecutionsQuery,
  RunAcceptedResponse,
  StepPageResponse,
  StepsQuery,
} from "./schemas.ts";
import { leaseOwner, respondsAsync, sessionRunDeps } from "./routes-sessions.ts";

/** A 202's `Location`: where the run's progress is (a replayed 202 gets it too). */
function withLocation(response: ApiResponse): ApiResponse {
  const body = response.body as { executionId?: unknown } | undefined;
  if (response.status !== 202 || typeof body?.executionId !== "string") return response;
  return {
    ...response,
    headers: { ...response.headers, location: `/executions/${encodeURIComponent(body.executionId)}` },
  };
}

export function executionRoutes(deps: ApiDeps, loader: DocumentLoader): RouteSpec[] {
  /** A stored record as the API shows it: a long run's summary with its first page of steps. */
  async function withFirstSteps(
    tenant: string,
    record: ExecutionRecord,
  ): Promise<ExecutionRecord & { stepsCursor?: string }> {
    if (record.stepCount === undefined) return record;
    const page = await deps.history.getSteps(tenant, record.executionId);
    if (!page) throw notFound(`execution "${record.executionId}"`);
    return {
      ...record,
      steps: page.steps,
      ...(page.cursor !== undefined ? { stepsCursor: page.cursor } : {}),
    };
  }

  async function runRequested(
    request: ApiRequest<z.infer<typeof CreateExecutionRequest>>,
  ): Promise<ApiResponse> {
    const { document: name, protocol, sessionId } = request.body;
    const session = sessionId ? await deps.sessions.get(request.tenant, sessionId) : undefined;
    // A session's runs take its version; a run of no session, its share of a split document's traffic.
    const document =
      session && session.document === name
        ? await loader.loadVersion(request.tenant, name, session.documentVersion)
        : await loadRouted(loader, deps.routing, request.tenant, name, `request:${request.requestId}`);
    if (!document.parsed.protocols.some((p) => p.name === protocol)) throw unknownProtocol(protocol);
    if (sessionId && !session) throw notFound(`session "${sessionId}"`);
    if (session && session.document !== name) {
      throw invalidRequest(`session "${sessionId}" belongs to document "${session.document}"`);
    }
    // Every run is durable: checkpointed, and handed to the runner past the budget; a run of a
    // session under the session's lease.
    return durableRun(request, document);
  }

  async function durableRun(
    request: ApiRequest<z.infer<typeof CreateExecutionRequest>>,
    document: Awaited<ReturnType<DocumentLoader["load"]>>,
  ): Promise<ApiResponse> {
    const { protocol, variables, sessionId } = request.body;
    const runDeps = sessionRunDeps(deps, loader, request);
    const respondAsync = respondsAsync(request);
    const outcome: RunOutcome = sessionId
      ? await startSessionRun(
          {
            tenant: request.tenant,
            sessionId,
            document,
            protocol,
            variables: variables ?? {},
            owner: leaseOwner(request),
            respondAsync,
          },
          runDeps,
        )
      : await startRun(
          { tenant: request.tenant, document, protocol, variables: variables ?? {}, trigger: "api" },
          runDeps,
          { syncBudgetMs: deps.config.SYNC_BUDGET_MS, respondAsync },
        );
    request.logger.appendPersistentKeys({ executionId: outcome.executionId });
    if (outcome.kind === "running") {
      return { status: 202, body: { executionId: outcome.executionId, status: "running" } };
    }
    const { state: _state, checkpointError: _error, suspended: _suspended, ...visible } = outcome.result;
    return answerFinished(request.tenant, outcome.executionId, visible, outcome.record.analysis);
  }

  async function answerFinished(
    tenant: string,
    executionId: string,
    result: { steps: unknown[]; path: string[] } & Record<string, unknown>,
    analysis: ExecutionRecord["analysis"],
  ): Promise<ApiResponse> {
    const body = { executionId, ...result, analysis };
    // A run of a page of steps or fewer is answered whole, without another read.
    if (result.steps.length <= PAGE_MAX_STEPS && result.path.length <= SUMMARY_MAX_PATH_IDS) {
      return { status: 200, body };
    }
    // A long run: its steps and path as GET /executions/{id} shows them.
    const stored = await deps.history.getExecution(tenant, executionId);
    if (!stored || (stored.stepCount === undefined && stored.pathLength === undefined)) {
      return { status: 200, body };
    }
    const shown = await withFirstSteps(tenant, stored);
    return {
      status: 200,
      body: {
        ...body,
        steps: shown.steps,
        path: shown.path,
        ...(shown.stepsCursor !== undefined ? { stepsCursor: shown.stepsCursor } : {}),
        ...(shown.stepCount !== undefined ? { stepCount: shown.stepCount } : {}),
        ...(shown.pathLength !== undefined ? { pathLength: shown.pathLength } : {}),
      },
    };
  }

  return [
    {
      method: "POST",
      path: "/executions",
      operationId: "createExecution",
      summary: "Run a protocol of a stored document",
      auth: true,
      body: CreateExecutionRequest,
      headers: [
        {
          name: "Idempotency-Key",
          description:
            "a retried request with the same key and body returns the first result without running again (kept 24 h)",
        },
        {
          name: "Prefer",
          description:
            "`respond-async`: answer 202 as soon as the run is created and handed to the runner, advancing nothing inline",
        },
      ],
      responses: {
        200: { description: "the run result (any run status)", schema: ExecutionResponse },
        202: {
          description:
            "the run did not finish within SYNC_BUDGET_MS (or `Prefer: respond-async`): the runner goes on with it; `Location` is /executions/{id}",
          schema: RunAcceptedResponse,
        },
        404: { description: "not_found: no such document or session", schema: ErrorResponse },
        409: {
          description: "idempotency_in_progress: the first request with this key is still running",
          schema: ErrorResponse,
        },
        422: {
          description: "unknown_protocol, or idempotency_key_reused (same key, different body)",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<z.infer<typeof CreateExecutionRequest>>) {
        const key = request.headers["idempotency-key"];
        if (key === undefined) return withLocation(await runRequested(request));
        if (!IDEMPOTENCY_KEY.test(key))
          throw invalidRequest("Idempotency-Key must be 1-255 visible ASCII characters");
        // idempotency_in_progress answers 409, idempotency_key_reused 422 (lib/http/errors.ts).
        const { replayed, response } = await deps.idempotency.run(
          { scope: "api", tenant: request.tenant, key, request: request.body },
          async () => {
            const { status, body } = await runRequested(request);
            return { status, body };
          },
          request.logger,
        );
        if (!replayed) return withLocation(response);
        request.logger.info("idempotent replay");
        return withLocation({ ...response, headers: { "idempotent-replayed": "true" } });
      },
    },
    {
      method: "GET",
      path: "/executions/{id}",
      operationId: "getExecution",
      summary: "One execution from history, with its step records (a long run's first page of them)",
      auth: true,
      params: { id: ExecutionId },
      responses: {
        200: {
          description:
            "the history record; for a long run its summary, the first page of its steps and `stepsCursor`",
          schema: ExecutionRecordResponse,
        },
      },
      async handle(request) {
        const record = await deps.history.getExecution(request.tenant, request.params.id as string);
        if (!record) throw notFound(`execution "${request.params.id}"`);
        const shown = await withFirstSteps(request.tenant, record);
        if (record.status !== "running") return { status: 200, body: shown };
        // A running run: where its checkpoint stands (the record has the steps of its last leg's end).
        // The record is the answer; its progress is extra: a run store out of reach leaves it out.
        const stored = await deps.checkpoints
          .get(request.tenant, record.executionId)
          .catch((error: unknown) => {
            if (error instanceof StoreUnavailableError) return undefined;
            throw error;
          });
        if (!stored) return { status: 200, body: shown };
        const progress = {
          stepCount: stored.state.stepCount,
          ...(stored.state.next !== undefined ? { next: stored.state.next } : {}),
          leased: stored.lease !== undefined && stored.lease.expiresAt > deps.clock.now(),
          ...(stored.state.pause !== undefined ? { waiting: stored.state.pause } : {}),
        };
        return { status: 200, body: { ...shown, progress } };
      },
    },
    {
      method: "GET",
      path: "/executions/{id}/steps",
      operationId: "getExecutionSteps",
      summary: "An execution's step records in run order, a page at a time",
      auth: true,
      params: { id: ExecutionId },
      query: StepsQuery,
      responses: {
        200: { description: "a page of step records", schema: StepPageResponse },
        400: {
          description:
            "invalid_request, invalid_cursor (malformed, past the end or of another execution) or invalid_limit",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<unknown, z.infer<typeof StepsQuery>>) {
        const id = request.params.id as string;
        const page = await deps.history.getSteps(request.tenant, id, request.query);
        if (!page) throw notFound(`execution "${id}"`);
        return { status: 200, body: page };
      },
    },
    {
      method: "GET",
      path: "/executions/{id}/children",
      operationId: "listExecutionChildren",
      summary:
        "An execution's child runs (its `call` and `foreach` steps' runs, each an execution of its own), a page at a time",
      auth: true,
      params: { id: ExecutionId },
      query: ChildrenQuery,
      responses: {
        200: {
          description:
            "a page of children, by parent step, visit and item; GET /executions/{child id} has each one's record",
          schema: ChildPageResponse,
        },
        400: {
          description: "invalid_request, invalid_cursor (malformed or of another execution) or invalid_limit",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<unknown, z.infer<typeof ChildrenQuery>>) {
        const id = request.params.id as string;
        const page = await deps.history.listChildren(request.tenant, id, request.query);
        if (!page) throw notFound(`execution "${id}"`);
        return { status: 200, body: page };
      },
    },
    {
      method: "GET",
      path: "/documents/{name}/protocols/{protocol}/executions",
      operationId: "listExecutions",
      summary: "A protocol's executions, newest first, from the time-range index",
      auth: true,
      params: { name: DocumentName, protocol: z.string().min(1).max(256) },
      query: ExecutionsQuery,
      responses: {
        200: { description: "a page of history records", schema: ExecutionPageResponse },
        400: {
          description: "invalid_request, invalid_cursor, invalid_limit or invalid_range",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<unknown, z.infer<typeof ExecutionsQuery>>) {
        const { name, protocol } = request.params as { name: string; protocol: string };
        const page = await deps.history.queryExecutions(request.tenant, name, protocol, request.query);
        return { status: 200, body: page.cursor ? page : { items: page.items } };
      },
    },
  ];
}
