/**
 * Sessions and their conversation: POST /sessions, GET/DELETE /sessions/{id},
 * POST /sessions/{id}/messages. All of a conversation's state lives in the session store
 * and is written with the version read (optimistic concurrency), so any instance can serve
 * the next message. A message takes the session's lease before it runs anything, and its run
 * is durable (lib/services/session-runs.ts): past SYNC_BUDGET_MS it is handed to the runner
 * and the answer is 202 with the replies so far.
 */
import { randomBytes } from "node:crypto";
import type { SessionState } from "../ports.ts";
import { runDepsOf } from "../services/runs.ts";
import { handleMessage, type SessionRunDeps } from "../services/session-runs.ts";
import type { ApiDeps } from "./deps.ts";
import type { DocumentLoader } from "../services/document-loader.ts";
import { loadRouted } from "../services/traffic-split.ts";
import { notFound } from "../errors.ts";
import type { ApiRequest, RouteSpec } from "./route.ts";
import {
  CreateSessionRequest,
  CreateSessionResponse,
  ErrorResponse,
  MessageRequest,
  MessageResponse,
  SessionId,
  SessionResponse,
} from "./schemas.ts";
import type { z } from "zod";

const idParam = { id: SessionId };

function newSessionId(): string {
  return `s_${randomBytes(18).toString("base64url")}`;
}

/** The run waiting for the session's next message: its checkpoint's (or, kept the former way, the session's). */
async function waitingOf(
  deps: ApiDeps,
  session: SessionState,
): Promise<z.infer<typeof SessionResponse>["waiting"]> {
  if (session.runExecutionId !== undefined) {
    const stored = await deps.checkpoints.get(session.tenant, session.runExecutionId);
    if (stored?.state.status !== "waiting_input" || stored.state.next === undefined) return null;
    return {
      protocol: stored.state.protocol,
      stepId: stored.state.next,
      executionId: session.runExecutionId,
    };
  }
  if (!session.suspended) return null;
  return {
    protocol: session.suspended.protocol,
    stepId: session.suspended.stepId,
    executionId: session.suspendedExecutionId ?? null,
  };
}

function sessionView(
  session: SessionState,
  waiting: z.infer<typeof SessionResponse>["waiting"],
): z.infer<typeof SessionResponse> {
  return {
    sessionId: session.sessionId,
    document: session.document,
    documentVersion: session.documentVersion,
    userId: session.userId,
    data: session.data,
    intent: session.intent ?? null,
    waiting,
    createdAt: session.createdAt,
    updatedAt: session.updatedAt,
    expiresAt: session.expiresAt,
    version: session.version,
  };
}

/** The deps of a session's durable runs, for one request. */
export function sessionRunDeps(deps: ApiDeps, loader: DocumentLoader, request: ApiRequest): SessionRunDeps {
  return {
    ...runDepsOf(deps, request.logger, deps.config.RUN_DEADLINE_MS),
    sessions: deps.sessions,
    loader,
    syncBudgetMs: deps.config.SYNC_BUDGET_MS,
    memoryBounds: { maxTurns: deps.config.MEMORY_MAX_TURNS, maxBytes: deps.config.MEMORY_MAX_BYTES },
    // Past any request's own life (its deadline and a margin), so a live request keeps it.
    leaseMs: deps.config.RUN_DEADLINE_MS + 30_000,
  };
}

/** A request's lease owner: unique per request. */
export function leaseOwner(request: ApiRequest): string {
  return `api:${request.requestId}:${randomBytes(6).toString("base64url")}`;
}

export function respondsAsync(request: ApiRequest): boolean {
  return /(^|[,;\s])respond-async\b/i.test(request.headers.prefer ?? "");
}

export function sessionRoutes(deps: ApiDeps, loader: DocumentLoader): RouteSpec[] {
  return [
    {
      method: "POST",
      path: "/sessions",
      operationId: "createSession",
      summary: "Start a conversation with a document",
      auth: true,
      body: CreateSessionRequest,
      responses: {
        201: { description: "created", schema: CreateSessionResponse },
        404: { description: "not_found: no such document", schema: ErrorResponse },
      },
      async handle(request: ApiRequest<z.infer<typeof CreateSessionRequest>>) {
        const { document: name, userId, data } = request.body;
        // A split document: the user's version (the same user, the same version while the split stands).
        const document = await loadRouted(loader, deps.routing, request.tenant, name, `user:${userId}`);
        const profile = document.parsed.profiles.find((p) => p.user_id === userId);
        const session = await deps.sessions.create({
          sessionId: newSessionId(),
          tenant: request.tenant,
          document: name,
          documentVersion: document.stored.version,
          userId,
          // The document's `session` class gives a new session its first data.
          data: { ...document.parsed.session?.data, ...data },
          ...(profile ? { profile } : {}),
        });
        request.logger.info("session created", { sessionId: session.sessionId, document: name });
        return { status: 201, body: { sessionId: session.sessionId, expiresAt: session.expiresAt } };
      },
    },
    {
      method: "GET",
      path: "/sessions/{id}",
      operationId: "getSession",
      summary: "A session's state",
      auth: true,
      params: idParam,
      responses: { 200: { description: "the session", schema: SessionResponse } },
      async handle(request) {
        const session = await deps.sessions.get(request.tenant, request.params.id as string);
        if (!session) throw notFound(`session "${request.params.id}"`);
        return { status: 200, body: sessionView(session, await waitingOf(deps, session)) };
      },
    },
    {
      method: "DELETE",
      path: "/sessions/{id}",
      operationId: "deleteSession",
      summary: "End a session",
      auth: true,
      params: idParam,
      responses: { 204: { description: "deleted" } },
      async handle(request) {
        const deleted = await deps.sessions.delete(request.tenant, request.params.id as string);
        if (!deleted) throw notFound(`session "${request.params.id}"`);
        return { status: 204 };
      },
    },
    {
      method: "POST",
      path: "/sessions/{id}/messages",
      operationId: "postMessage",
      summary:
        "Send the user's message: recognise its intent and start its protocol, or resume the run waiting for input",
      auth: true,
      params: idParam,
      body: MessageRequest,
      headers: [
        {
          name: "Prefer",
          description:
            "`respond-async`: answer 202 once the message is taken (intent recognised, reply applied), running no step inline",
        },
      ],
      responses: {
        200: { description: "the outcome of the message", schema: MessageResponse },
        202: {
          description:
            "the message's run did not finish within SYNC_BUDGET_MS (or `Prefer: respond-async`): status `running`, the replies so far and the execution id; the runner goes on with it; `Location` is /executions/{id}",
          schema: MessageResponse,
        },
        409: {
          description:
            "session_conflict (another message changed the session first) or session_busy (another message is being handled, or the session's run is still running): nothing was changed or called",
          schema: ErrorResponse,
        },
        503: {
          description: "session_store_unavailable, run_store_unavailable or history_unavailable",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<z.infer<typeof MessageRequest>>) {
        const sessionId = request.params.id as string;
        request.logger.appendPersistentKeys({ sessionId });
        const turn = await handleMessage(
          {
            tenant: request.tenant,
            sessionId,
            text: request.body.text,
            owner: leaseOwner(request),
            respondAsync: respondsAsync(request),
          },
          sessionRunDeps(deps, loader, request),
        );
        const { executionId } = turn.body;
        if (executionId) request.logger.appendPersistentKeys({ executionId });
        if (!turn.accepted) return { status: 200, body: turn.body };
        return {
          status: 202,
          body: turn.body,
          headers: { location: `/executions/${encodeURIComponent(executionId as string)}` },
        };
      },
    },
  ];
}
