/**
 * A session's messages and runs, durable like every run (lib/services/runs.ts).
 *
 * A request takes the session's lease (owner and expiry in the session, one versioned write)
 * before it runs anything: a message that cannot get it (another holds a live lease, or the
 * write lost the race) answers 409 having called nothing, not the LLM, not a tool. The lease
 * ends with the request's last session write. The run a message starts, or resumes, is a
 * durable run: history record `running` and checkpoint from its first moment, a CAS write per
 * step, inline within SYNC_BUDGET_MS, else handed to the runner. The session points at its run
 * while it is not finished (`runExecutionId`); the checkpoint says whether it waits for the
 * next message (resumed with it, under the run's lease too) or still runs (a message then
 * answers 409 `session_busy`). A message matching an intent with `interrupts` cancels the
 * waiting run instead (run-interrupt.ts) and starts that intent's protocol.
 */
import {
  RUN_STATE_PATH_TAIL,
  type RunResult,
  type RunState,
  type StepError,
  type SuspendedRun,
} from "../core/run.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import { recognizeIntent } from "../engine/intent-recognition.ts";
import { countVisits, findProtocol } from "../engine/run-state.ts";
import { DEFAULT_RUN_DEADLINE_MS } from "../engine/run-options.ts";
import { MovaError, isMovaError, notFound } from "../errors.ts";
import { matchIntent } from "../mova/intents.ts";
import { renderTemplate } from "../mova/placeholders.ts";
import { withSessionWrites } from "../mova/response-mapping.ts";
import { type ConversationBounds, rememberTurns, withUnrememberedReplies } from "../core/conversation.ts";
import type { RunContext } from "../engine/run-options.ts";
import { createResolver } from "../engine/variables.ts";
import type { Intent, MovaDocument } from "../mova/schema.ts";
import type { SessionState, SessionStore, StoredRun } from "../ports.ts";
import type { DocumentLoader } from "./document-loader.ts";
import type { LoadedDocument } from "./executions.ts";
import { advanceLeg, headerOf, type RunDeps, type RunHeader, type RunOutcome, startRun } from "./runs.ts";
import { interruptWaitingRun } from "./run-interrupt.ts";
import { resumptionOf } from "./run-resumption.ts";

export interface SessionRunDeps extends RunDeps {
  sessions: SessionStore;
  loader: DocumentLoader;
  /** SYNC_BUDGET_MS: steps run inline until this much time passed. */
  syncBudgetMs: number;
  /** How long a request's lease on a session (and its run) lasts: longer than any request. */
  leaseMs: number;
  /** MEMORY_MAX_TURNS / MEMORY_MAX_BYTES: how much of its conversation a session keeps (defaults: conversation.ts). */
  memoryBounds?: ConversationBounds;
}

/** A message or run refused because the session is taken: 409, nothing was changed or called. */
export const sessionBusy = (sessionId: string, why: string) =>
  new MovaError("session_busy", `session "${sessionId}" is busy: ${why}; nothing was changed`, {
    retryable: true,
  });

type WritableSession = Omit<SessionState, "version" | "updatedAt" | "expiresAt">;

/** The session without the store-managed fields, ready for SessionStore.update. */
export function writableSession(session: SessionState): WritableSession {
  const { version: _version, updatedAt: _updatedAt, expiresAt: _expiresAt, ...rest } = session;
  return rest;
}

/** Writes the session with the version read; a vanished session is a 404 and a newer one a 409 (thrown by the store). */
export async function commitSession(
  sessions: SessionStore,
  session: SessionState,
  next: WritableSession,
): Promise<SessionState> {
  const written = await sessions.update(session.tenant, session.sessionId, session.version, next);
  if (!written) throw notFound(`session "${session.sessionId}"`);
  return written;
}

/** What a message answers: 200 with the turn's outcome, or 202 (`accepted`) when its run goes on in the runner. */
export interface MessageTurn {
  accepted: boolean;
  body: {
    status: string;
    replies: string[];
    intent: string | null;
    executionId: string | null;
    output?: unknown;
    waitingFor?: { stepId: string; prompt: string; variable: string };
    error?: StepError;
    /** The run this message cancelled: it waited for input and the message matched an interrupting intent. */
    interrupted?: string;
  };
}

export interface MessageRequest {
  tenant: string;
  sessionId: string;
  text: string;
  /** The lease owner: this request, unique. */
  owner: string;
  /** `Prefer: respond-async`: recognise, apply the reply, run no step inline. */
  respondAsync?: boolean;
}

/** The session's pending run, read from its checkpoint, and whether a message may go on now. */
async function pendingRun(deps: SessionRunDeps, session: SessionState): Promise<StoredRun | undefined> {
  const now = deps.clock.now();
  if (session.lease && session.lease.expiresAt > now) {
    throw sessionBusy(session.sessionId, "another request is handling it");
  }
  if (session.runExecutionId === undefined) return undefined;
  const stored = await deps.checkpoints.get(session.tenant, session.runExecutionId);
  if (stored?.state.status === "running") {
    throw sessionBusy(
      session.sessionId,
      `its run ${session.runExecutionId} is still running (GET /executions/${session.runExecutionId})`,
    );
  }
  return stored;
}

/**
 * Holds the session's lease while `turn` runs: taken before it (409 when it cannot be), given
 * back with the turn's own session write, or by a write of its own when the turn failed.
 */
async function underLease(
  deps: SessionRunDeps,
  session: SessionState,
  owner: string,
  turn: (leased: SessionState) => Promise<{ next: WritableSession } & Record<string, unknown>>,
): Promise<Record<string, unknown>> {
  const { lease: _lease, ...unleased } = writableSession(session);
  const leased = await commitSession(deps.sessions, session, {
    ...unleased,
    lease: { owner, expiresAt: deps.clock.now() + deps.leaseMs },
  });
  let done: Awaited<ReturnType<typeof turn>>;
  try {
    done = await turn(leased);
  } catch (error) {
    await commitSession(deps.sessions, leased, unleased).catch((cause: unknown) =>
      deps.logger?.warn("session lease not given back (it expires by itself)", {
        sessionId: session.sessionId,
        error: String(cause),
      }),
    );
    throw error;
  }
  const { lease: _held, ...next } = done.next;
  await commitSession(deps.sessions, leased, next);
  return done;
}

/** Handles one message: recognise its intent and start its protocol, or resume the run waiting for it. */
export async function handleMessage(request: MessageRequest, deps: SessionRunDeps): Promise<MessageTurn> {
  const { tenant, sessionId, text } = request;
  const session = await deps.sessions.get(tenant, sessionId);
  if (!session) throw notFound(`session "${sessionId}"`);
  const pending = await pendingRun(deps, session);
  const done = await underLease(deps, session, request.owner, async (leased) => {
    // Replies the session's run showed since the last message (legs the runner advanced) join
    // the conversation first, before this message, and are sent with it to prompts' memory.
    const conversation = withRepliesShownMeanwhile(leased, pending, deps.memoryBounds).conversation;
    const base = { ...unattached(leased), ...(conversation ? { conversation } : {}) };
    const context = {
      session: leased.data,
      ...(leased.profile ? { profile: leased.profile } : {}),
      ...(conversation ? { conversation } : {}),
    };
    const shouldPauseAfter = (startedMs: number) =>
      request.respondAsync ? () => true : () => deps.clock.now() - startedMs >= deps.syncBudgetMs;

    const waiting = await waitingRun(deps, leased, pending);
    const interrupting = waiting ? await interruptingIntent(deps, leased, text) : undefined;
    if (waiting && interrupting) {
      if (!(await interruptWaitingRun(waiting, interrupting.intent.name, request.owner, deps))) {
        throw sessionBusy(sessionId, `its run ${waiting.header.executionId} is being advanced`);
      }
      return startIntentRun(deps, request, leased, interrupting.document, interrupting.intent, {
        base,
        context,
        interrupted: waiting.header.executionId,
      });
    }
    if (waiting) {
      const startedMs = deps.clock.now();
      const outcome = await resumeWaiting(deps, request, waiting, {
        reply: text,
        context,
        shouldPause: shouldPauseAfter(startedMs),
      });
      return turnOf(base, outcome, waiting.header.intent, text, deps.memoryBounds);
    }

    // A conversation stays on the version it started with, whatever was stored since.
    const document = await deps.loader.loadVersion(tenant, leased.document, leased.documentVersion);
    const intent = await recognise(document.parsed, text, deps);
    if (!intent) {
      return {
        next: base,
        turn: {
          accepted: false,
          body: {
            status: "not_understood",
            replies: [notUnderstoodReply(document.parsed)],
            intent: null,
            executionId: null,
          },
        } satisfies MessageTurn,
      };
    }
    if (!intent.protocol) {
      const reply = intent.response_template
        ? renderTemplate(intent.response_template, resolverFor(leased, document.parsed, intent.name, text))
            .text
        : undefined;
      return {
        next: { ...base, intent: intent.name },
        turn: {
          accepted: false,
          body: {
            status: "responded",
            replies: reply ? [reply] : [],
            intent: intent.name,
            executionId: null,
          },
        } satisfies MessageTurn,
      };
    }
    return startIntentRun(
      deps,
      request,
      leased,
      document,
      { ...intent, protocol: intent.protocol },
      {
        base,
        context,
      },
    );
  });
  return done.turn as MessageTurn;
}

/** Starts the protocol of the intent a message matched, as the session's run. */
async function startIntentRun(
  deps: SessionRunDeps,
  request: MessageRequest,
  leased: SessionState,
  document: LoadedDocument,
  intent: Intent & { protocol: string },
  turn: {
    base: WritableSession;
    context: Pick<RunContext, "session" | "profile" | "conversation">;
    interrupted?: string;
  },
) {
  const { protocol } = intent;
  const outcome = await startRun(
    {
      tenant: request.tenant,
      document,
      protocol,
      variables: { user_input: request.text },
      trigger: "session",
      intent: intent.name,
      sessionId: leased.sessionId,
      context: turn.context,
    },
    deps,
    { syncBudgetMs: deps.syncBudgetMs, ...(request.respondAsync ? { respondAsync: true } : {}) },
  );
  const done = turnOf(
    { ...turn.base, intent: intent.name },
    outcome,
    intent.name,
    request.text,
    deps.memoryBounds,
  );
  if (turn.interrupted !== undefined) done.turn.body.interrupted = turn.interrupted;
  return done;
}

/**
 * The intent with `interrupts` (and a protocol) whose patterns a message matches while the
 * session's run waits for input. Patterns only, never the LLM: an answer is not sent to a
 * classifier that could mistake it for an interrupt, and costs no call.
 */
async function interruptingIntent(
  deps: SessionRunDeps,
  session: SessionState,
  text: string,
): Promise<{ document: LoadedDocument; intent: Intent & { protocol: string } } | undefined> {
  const document = await deps.loader.loadVersion(session.tenant, session.document, session.documentVersion);
  const interrupting = document.parsed.intents.filter(
    (intent) => intent.interrupts === true && intent.protocol,
  );
  if (interrupting.length === 0) return undefined;
  const match = matchIntent({ ...document.parsed, intents: interrupting }, text);
  const protocol = match?.intent.protocol;
  if (!match || protocol === undefined) return undefined;
  return { document, intent: { ...match.intent, protocol } };
}

export interface SessionRunRequest {
  tenant: string;
  sessionId: string;
  document: LoadedDocument;
  protocol: string;
  variables: Record<string, unknown>;
  owner: string;
  respondAsync?: boolean;
}

/**
 * POST /executions with `sessionId`: a durable run of the session, under the session's lease.
 * A run left waiting for input or running becomes the session's run; while the session's run
 * still runs or waits for input, 409 `session_busy` (nothing started).
 */
export async function startSessionRun(request: SessionRunRequest, deps: SessionRunDeps): Promise<RunOutcome> {
  const session = await deps.sessions.get(request.tenant, request.sessionId);
  if (!session) throw notFound(`session "${request.sessionId}"`);
  const pending = await pendingRun(deps, session);
  // A run waiting for the session's next message would be left waiting, unreachable: it is
  // answered or cancelled first.
  const waitingId =
    pending?.state.status === "waiting_input"
      ? session.runExecutionId
      : session.suspended
        ? session.suspendedExecutionId
        : undefined;
  if (waitingId !== undefined) {
    throw sessionBusy(
      session.sessionId,
      `its run ${waitingId} waits for input: answer it (POST /sessions/${session.sessionId}/messages) or cancel it (POST /executions/${waitingId}/cancel) first`,
    );
  }
  const done = await underLease(deps, session, request.owner, async (leased) => {
    // The replies the session's run showed since the last message join the conversation now:
    // this run may take the run's place in the session, and with it the count of them.
    const base = withRepliesShownMeanwhile(leased, pending, deps.memoryBounds);
    const { conversation } = base;
    const outcome = await startRun(
      {
        tenant: request.tenant,
        document: request.document,
        protocol: request.protocol,
        variables: request.variables,
        trigger: "api",
        sessionId: leased.sessionId,
        ...(leased.intent !== undefined ? { intent: leased.intent } : {}),
        context: {
          session: leased.data,
          ...(leased.profile ? { profile: leased.profile } : {}),
          ...(conversation ? { conversation } : {}),
        },
      },
      deps,
      { syncBudgetMs: deps.syncBudgetMs, ...(request.respondAsync ? { respondAsync: true } : {}) },
    );
    const goesOn =
      outcome.kind === "running" ||
      (outcome.kind === "finished" && outcome.result.status === "waiting_input");
    const { suspended: _suspended, suspendedExecutionId: _id, ...rest } = base;
    // The session data keys a finished leg wrote (response_mapping) join the session's data.
    const data =
      outcome.kind === "finished" ? withSessionWrites(base.data, outcome.result.variables) : base.data;
    return {
      // None of this run's replies is in the conversation yet: the next message takes them in.
      next: goesOn
        ? { ...rest, data, runExecutionId: outcome.executionId, runRepliesRemembered: 0 }
        : { ...base, data },
      outcome,
    };
  });
  return done.outcome as RunOutcome;
}

/**
 * The session with the replies its run has shown since they were last remembered (legs the
 * runner advanced) added to its conversation, each once, and counted as remembered.
 */
function withRepliesShownMeanwhile(
  session: SessionState,
  pending: StoredRun | undefined,
  memoryBounds: ConversationBounds | undefined,
): WritableSession {
  const current = writableSession(session);
  const shown = pending?.state.shown;
  const conversation = withUnrememberedReplies(
    session.conversation,
    shown,
    session.runRepliesRemembered ?? 0,
    memoryBounds,
  );
  // The same conversation: nothing was shown meanwhile.
  if (shown === undefined || conversation === session.conversation) return current;
  return { ...current, ...(conversation ? { conversation } : {}), runRepliesRemembered: shown.count };
}

/** The session without its run (the next write attaches the run that goes on, if any). */
function unattached(session: SessionState): WritableSession {
  const {
    suspended: _suspended,
    suspendedExecutionId: _suspendedId,
    runExecutionId: _runId,
    runRepliesRemembered: _remembered,
    ...rest
  } = writableSession(session);
  return rest;
}

/** The session's next state and the message's answer, from how its run's leg ended. */
function turnOf(
  base: WritableSession,
  outcome: RunOutcome,
  intent: string | undefined,
  text: string,
  memoryBounds: ConversationBounds | undefined,
): { next: WritableSession; turn: MessageTurn } {
  const replies = outcome.kind === "running" ? outcome.replies : outcome.result.replies;
  // The session remembers the message and the replies shown, for prompt steps' memory.
  const conversation = rememberTurns(
    base.conversation,
    [
      { role: "user", content: text },
      ...replies.map((reply) => ({ role: "assistant" as const, content: reply })),
    ],
    memoryBounds,
  );
  const next = { ...base, conversation, ...(intent !== undefined ? { intent } : {}) };
  // Every reply the run has shown so far is remembered now (its state counts them over legs).
  const shown = (outcome.kind === "running" ? outcome.state : outcome.result.state)?.shown;
  const attached = {
    runExecutionId: outcome.executionId,
    runRepliesRemembered: shown?.count ?? replies.length,
  };
  if (outcome.kind === "running") {
    return {
      next: { ...next, ...attached },
      turn: {
        accepted: true,
        body: {
          status: "running",
          replies: outcome.replies,
          intent: intent ?? null,
          executionId: outcome.executionId,
        },
      },
    };
  }
  const { result } = outcome;
  // The session data keys the run wrote (response_mapping) join the session's data.
  const written = { ...next, data: withSessionWrites(next.data, result.variables) };
  return {
    next: result.status === "waiting_input" ? { ...written, ...attached } : written,
    turn: { accepted: false, body: messageBody(result, intent, outcome.executionId) },
  };
}

function messageBody(
  result: RunResult,
  intent: string | undefined,
  executionId: string,
): MessageTurn["body"] {
  const body: MessageTurn["body"] = {
    status: result.status,
    replies: result.replies,
    intent: intent ?? null,
    executionId,
    output: result.output,
  };
  if (result.waitingFor) body.waitingFor = result.waitingFor;
  if (result.error) body.error = result.error;
  return body;
}

interface WaitingRun {
  header: RunHeader;
  record: ExecutionRecord | undefined;
  prior: { steps: ExecutionRecord["steps"]; path: string[] };
  document: LoadedDocument;
}

/**
 * The run waiting for this message: the session's checkpointed run when it waits for input,
 * or a run the session kept the former way (`suspended`), moved to a checkpoint now.
 */
async function waitingRun(
  deps: SessionRunDeps,
  session: SessionState,
  pending: StoredRun | undefined,
): Promise<WaitingRun | undefined> {
  if (pending?.state.status === "waiting_input" && session.runExecutionId !== undefined) {
    const record = await deps.history.getExecution(session.tenant, session.runExecutionId);
    if (!record) return undefined;
    // The message brings the session's context: none is read here.
    const { header, prior, document } = await resumptionOf(record, {
      history: deps.history,
      loader: deps.loader,
    });
    return { header, record, prior, document };
  }
  if (!session.suspended) return undefined;
  return adoptSuspended(deps, session, session.suspended);
}

/** A run suspended before runs were durable: its checkpoint is made from it, under its execution id. */
async function adoptSuspended(
  deps: SessionRunDeps,
  session: SessionState,
  suspended: SuspendedRun,
): Promise<WaitingRun | undefined> {
  const executionId = session.suspendedExecutionId;
  if (executionId === undefined) return undefined;
  const record = await deps.history.getExecution(session.tenant, executionId);
  const document = record
    ? await deps.loader.loadVersion(session.tenant, record.document, record.documentVersion)
    : await deps.loader.load(session.tenant, session.document);
  const protocol = findProtocol(document.parsed, suspended.protocol);
  const step = protocol.steps.find((s) => s.id === suspended.stepId);
  if (step?.action !== "input") return undefined;
  const state: RunState = {
    v: 2,
    protocol: suspended.protocol,
    status: "waiting_input",
    next: suspended.stepId,
    variables: suspended.variables,
    path: suspended.path.slice(-RUN_STATE_PATH_TAIL),
    stepCount: suspended.stepCount,
    visits: suspended.visits ?? countVisits(suspended.path),
    unresolved: suspended.unresolved,
    startedAt: suspended.startedAt,
    deadlineAt:
      suspended.visits !== undefined && suspended.deadlineAt !== undefined
        ? suspended.deadlineAt
        : Date.parse(suspended.startedAt) + (protocol.deadline_ms ?? DEFAULT_RUN_DEADLINE_MS),
    offline: suspended.offline === true,
    secretNames: suspended.secretNames ?? [],
    ...(suspended.waiting
      ? {
          waiting: {
            prompt: suspended.waiting.prompt,
            since: suspended.waiting.since,
            variable: step.variable,
          },
        }
      : {}),
  };
  try {
    await deps.checkpoints.create(session.tenant, executionId, state);
  } catch (error) {
    if (!isMovaError(error, "run_exists")) throw error;
  }
  const header: RunHeader = record
    ? headerOf(record)
    : {
        tenant: session.tenant,
        executionId,
        document: document.stored.name,
        documentVersion: document.stored.version,
        protocol: suspended.protocol,
        trigger: "session",
        sessionId: session.sessionId,
        ...(session.intent !== undefined ? { intent: session.intent } : {}),
      };
  return { header, record, prior: { steps: suspended.steps, path: suspended.path }, document };
}

/** Resumes the waiting run with the message, under the run's lease; a leg not finished goes to the runner. */
async function resumeWaiting(
  deps: SessionRunDeps,
  request: MessageRequest,
  waiting: WaitingRun,
  leg: {
    reply: string;
    context: Pick<RunContext, "session" | "profile" | "conversation">;
    shouldPause: () => boolean;
  },
): Promise<RunOutcome> {
  const { tenant, executionId } = waiting.header;
  const leased = await deps.checkpoints.acquireLease(
    tenant,
    executionId,
    request.owner,
    deps.leaseMs,
    deps.clock.now(),
  );
  if (!leased) throw sessionBusy(request.sessionId, `its run ${executionId} is being advanced`);
  if (leased.state.status !== "waiting_input") {
    await deps.checkpoints.releaseLease(tenant, executionId, request.owner).catch(() => undefined);
    throw sessionBusy(request.sessionId, `its run ${executionId} no longer waits for input`);
  }
  deps.logger?.appendKeys({ executionId });
  let outcome: Awaited<ReturnType<typeof advanceLeg>>;
  try {
    outcome = await advanceLeg(
      {
        header: waiting.header,
        document: waiting.document,
        stored: { version: leased.version, state: leased.state },
        prior: { steps: waiting.prior.steps as never, path: waiting.prior.path },
        reply: leg.reply,
        context: leg.context,
        shouldPause: leg.shouldPause,
        ...(deps.runDeadlineMs !== undefined ? { budgetMs: deps.runDeadlineMs } : {}),
      },
      deps,
    );
  } finally {
    await deps.checkpoints.releaseLease(tenant, executionId, request.owner).catch(() => undefined);
  }
  if (outcome.checkpointError !== undefined && isMovaError(outcome.checkpointError, "run_conflict")) {
    throw outcome.checkpointError;
  }
  // Not finished (the budget spent, or a checkpoint write failed): the runner goes on from the last checkpoint.
  if (outcome.kind === "running") await deps.runQueue.enqueue({ tenant, executionId });
  return outcome;
}

async function recognise(
  document: MovaDocument,
  text: string,
  deps: SessionRunDeps,
): Promise<Intent | undefined> {
  // Bounded by the request's deadline: a quarter of it, so the run it starts keeps the rest.
  const signal = AbortSignal.timeout(Math.max(1, Math.floor((deps.runDeadlineMs ?? 25_000) / 4)));
  const match = await recognizeIntent(document, text, deps.llm, signal);
  return match?.intent;
}

/** What an intent's template reads: the same names as a run (`{session.data.KEY}` included), no secrets. */
function resolverFor(session: SessionState, document: MovaDocument, intent: string, text: string) {
  return createResolver({
    variables: { user_input: text },
    session: session.data,
    sessionDefaults: document.session?.data,
    profile: session.profile,
    intent,
    now: () => Date.now(),
  });
}

function notUnderstoodReply(document: MovaDocument): string {
  const topics = document.intents
    .map((intent) => intent.description ?? intent.patterns[0] ?? intent.name)
    .filter(Boolean)
    .slice(0, 8);
  if (topics.length === 0) return "Sorry, I did not understand that.";
  return `Sorry, I did not understand that. I can help with: ${topics.join("; ")}.`;
}
