/**
 * What a leg needs to take a run up again from its history record: the run's header, the
 * document version it started on, the step records and path recorded so far, and, for a
 * session's run, the session's data, profile and conversation as they are now. One
 * definition for every leg that resumes a run on its own (the runner, an event delivered to
 * the run): a session's message brings its session with it instead.
 *
 * The conversation such a leg reads ends with the replies the run has shown that the session
 * has not taken in yet (its earlier legs': only a message writes the session), so a prompt's
 * memory holds what the run itself said before.
 */
import { type ConversationBounds, withUnrememberedReplies } from "../core/conversation.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { RunState } from "../core/run.ts";
import type { RunContext } from "../engine/run-options.ts";
import type { SessionStore } from "../ports.ts";
import type { DocumentLoader } from "./document-loader.ts";
import type { LoadedDocument } from "./executions.ts";
import { headerOf, priorOf, type RunDeps, type RunHeader } from "./runs.ts";

export type SessionContext = Pick<RunContext, "session" | "profile" | "conversation">;

export interface Resumption {
  header: RunHeader;
  document: LoadedDocument;
  prior: Awaited<ReturnType<typeof priorOf>>;
  /** The session's context, for a run of a session that still exists. */
  context?: SessionContext;
}

export interface ResumptionDeps {
  history: RunDeps["history"];
  loader: DocumentLoader;
  /** Where a session's run reads its `session.*` and `profile.*`; without it they stay unresolved. */
  sessions?: Pick<SessionStore, "get"> | undefined;
  /** MEMORY_MAX_TURNS / MEMORY_MAX_BYTES (defaults: conversation.ts). */
  memoryBounds?: ConversationBounds | undefined;
}

/** `state`: the run's checkpoint, whose shown replies the session may not have taken in yet. */
export async function resumptionOf(
  record: ExecutionRecord,
  deps: ResumptionDeps,
  state?: Pick<RunState, "shown">,
): Promise<Resumption> {
  const header = headerOf(record);
  const [document, prior, context] = await Promise.all([
    deps.loader.loadVersion(header.tenant, header.document, header.documentVersion),
    priorOf(deps.history, record),
    sessionContextOf(record, deps, state),
  ]);
  return { header, document, prior, ...(context ? { context } : {}) };
}

/** A session's run goes on with the session's data, profile and conversation as they are now. */
async function sessionContextOf(
  record: ExecutionRecord,
  deps: ResumptionDeps,
  state: Pick<RunState, "shown"> | undefined,
): Promise<SessionContext | undefined> {
  if (record.sessionId === undefined || !deps.sessions) return undefined;
  const session = await deps.sessions.get(record.tenant, record.sessionId);
  if (!session) return undefined;
  // The session counts the replies of its own run only.
  const remembered = session.runExecutionId === record.executionId ? (session.runRepliesRemembered ?? 0) : 0;
  const conversation = withUnrememberedReplies(
    session.conversation,
    state?.shown,
    remembered,
    deps.memoryBounds,
  );
  return {
    session: session.data,
    ...(session.profile ? { profile: session.profile } : {}),
    ...(conversation ? { conversation } : {}),
  };
}
