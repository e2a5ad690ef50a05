/**
 * Sessions and their conversation: POST /sessions, GET/DELETE /sessions/{id},
 * POST /sessions/{id}/messages. All of a conversation's state lives in the session store
 * and is written with the version read (optimistic concurrency), so any instance can serve
 * the next message and two concurrent messages never lose each other's writes.
 */
import { randomBytes } from "node:crypto";
import type { RunResult } from "../core/run.ts";
import { recognizeIntent } from "../engine/intent-recognition.ts";
import { renderTemplate, getPath } from "../mova/placeholders.ts";
import type { Intent, MovaDocument } from "../mova/schema.ts";
import type { SessionState } from "../ports.ts";
import {
  executionDepsOf,
  type LoadedDocument,
  recordExecution,
  runExecution,
} from "../services/executions.ts";
import type { ApiDeps } from "./deps.ts";
import type { DocumentLoader } from "../services/document-loader.ts";
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
import { rememberTurns } from "../core/conversation.ts";

const idParam = { id: SessionId };

function newSessionId(): string {
  return `s_${randomBytes(18).toString("base64url")}`;
}

function sessionView(session: SessionState): z.infer<typeof SessionResponse> {
  return {
    sessionId: session.sessionId,
    document: session.document,
    documentVersion: session.documentVersion,
    userId: session.userId,
    data: session.data,
    intent: session.intent ?? null,
    waiting: session.suspended
      ? {
          protocol: session.suspended.protocol,
          stepId: session.suspended.stepId,
          executionId: session.suspendedExecutionId ?? null,
        }
      : null,
    createdAt: session.createdAt,
    updatedAt: session.updatedAt,
    expiresAt: session.expiresAt,
    version: session.version,
  };
}

/** The session without the store-managed fields, ready for SessionStore.update. */
export function writableSession(
  session: SessionState,
): Omit<SessionState, "version" | "updatedAt" | "expiresAt"> {
  const { version: _version, updatedAt: _updatedAt, expiresAt: _expiresAt, ...rest } = session;
  return rest;
}

/** Writes the session with the version read; a vanished session is a 404 and a newer one a 409 (thrown by the store). */
export async function commitSession(
  deps: ApiDeps,
  session: SessionState,
  next: Omit<SessionState, "version" | "updatedAt" | "expiresAt">,
): Promise<SessionState> {
  const written = await deps.sessions.update(session.tenant, session.sessionId, session.version, next);
  if (!written) throw notFound(`session "${session.sessionId}"`);
  return written;
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
        const document = await loader.load(request.tenant, name);
        const profile = document.parsed.profiles.find((p) => p.user_id === userId);
        const session = await deps.sessions.create({
          sessionId: newSessionId(),
          tenant: request.tenant,
          document: name,
          documentVersion: document.stored.version,
          userId,
          data: data ?? {},
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
        return { status: 200, body: sessionView(session) };
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
      responses: {
        200: { description: "the outcome of the message", schema: MessageResponse },
        409: {
          description: "session_conflict: another message changed the session first; nothing was changed",
          schema: ErrorResponse,
        },
        503: { description: "session_store_unavailable or history_unavailable", schema: ErrorResponse },
      },
      async handle(request: ApiRequest<z.infer<typeof MessageRequest>>) {
        const sessionId = request.params.id as string;
        const session = await deps.sessions.get(request.tenant, sessionId);
        if (!session) throw notFound(`session "${sessionId}"`);
        request.logger.appendPersistentKeys({ sessionId });
        const document = await loader.load(request.tenant, session.document);
        const body = await handleMessage(deps, request, session, document, request.body.text);
        return { status: 200, body };
      },
    },
  ];
}

type MessageOutcome = z.infer<typeof MessageResponse>;

async function handleMessage(
  deps: ApiDeps,
  request: ApiRequest,
  session: SessionState,
  document: LoadedDocument,
  text: string,
): Promise<MessageOutcome> {
  const base = writableSession(session);
  const context = {
    session: session.data,
    ...(session.profile ? { profile: session.profile } : {}),
    ...(session.conversation ? { conversation: session.conversation } : {}),
  };
  const execution = executionDepsOf(deps, request.logger, deps.config.RUN_DEADLINE_MS);

  let runRequest: Parameters<typeof runExecution>[0];
  if (session.suspended) {
    runRequest = {
      tenant: session.tenant,
      document,
      protocol: session.suspended.protocol,
      sessionId: session.sessionId,
      trigger: "session",
      ...(session.intent ? { intent: session.intent } : {}),
      ...(session.suspendedExecutionId ? { executionId: session.suspendedExecutionId } : {}),
      ...context,
      resume: { suspended: session.suspended, reply: text },
    };
  } else {
    const intent = await recognise(document.parsed, text, deps);
    if (!intent) {
      await commitSession(deps, session, base);
      return {
        status: "not_understood",
        replies: [notUnderstoodReply(document.parsed)],
        intent: null,
        executionId: null,
      };
    }
    if (!intent.protocol) {
      const reply = intent.response_template
        ? renderTemplate(intent.response_template, resolverFor(session, intent.name, text)).text
        : undefined;
      await commitSession(deps, session, { ...base, intent: intent.name });
      return { status: "responded", replies: reply ? [reply] : [], intent: intent.name, executionId: null };
    }
    runRequest = {
      tenant: session.tenant,
      document,
      protocol: intent.protocol,
      variables: { user_input: text },
      sessionId: session.sessionId,
      trigger: "session",
      intent: intent.name,
      ...context,
    };
  }

  const outcome = await runExecution(runRequest, execution);
  request.logger.appendPersistentKeys({ executionId: outcome.executionId });
  const { result } = outcome;
  const { suspended: _suspended, suspendedExecutionId: _suspendedId, ...withoutRun } = base;
  // The session remembers the message and the replies shown for prompt steps' memory.
  const rest = {
    ...withoutRun,
    conversation: rememberTurns(session.conversation, [
      { role: "user" as const, content: text },
      ...result.replies.map((reply) => ({ role: "assistant" as const, content: reply })),
    ]),
  };
  const next =
    result.status === "waiting_input" && result.suspended
      ? {
          ...rest,
          intent: runRequest.intent,
          suspended: result.suspended,
          suspendedExecutionId: outcome.executionId,
        }
      : { ...rest, intent: runRequest.intent };
  // The session is committed first: a message that lost the race (409) leaves no trace in
  // history or on the queue. The price: if history then fails, the session has moved on and
  // the caller gets 503 for a turn that was applied.
  await commitSession(deps, session, next);
  await recordExecution(outcome.record, execution);
  return messageOutcome(result, runRequest.intent, outcome.executionId);
}

function messageOutcome(result: RunResult, intent: string | undefined, executionId: string): MessageOutcome {
  const outcome: MessageOutcome = {
    status: result.status,
    replies: result.replies,
    intent: intent ?? null,
    executionId,
    output: result.output,
  };
  if (result.waitingFor) outcome.waitingFor = result.waitingFor;
  if (result.error) outcome.error = result.error;
  return outcome;
}

async function recognise(document: MovaDocument, text: string, deps: ApiDeps): Promise<Intent | undefined> {
  const match = await recognizeIntent(document, text, deps.llm);
  return match?.intent;
}

function resolverFor(session: SessionState, intent: string, text: string) {
  const root: Record<string, unknown> = {
    session: session.data,
    profile: session.profile,
    intent,
    user_input: text,
    now: new Date().toISOString(),
  };
  return (path: string) => getPath(root, path);
}

function notUnderstoodReply(document: MovaDocument): string {
  const topics = document.intents
    .map((intent) => intent.description ?? intent.patterns[0] ?? intent.name)
    .filter(Boolean)
    .slice(0, 8);
  if (topics.length === 0) return "Sorry, I did not understand that.";
  return `Sorry, I did not understand that. I can help with: ${topics.join("; ")}.`;
}
