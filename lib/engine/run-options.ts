/** How a caller asks the engine to run, resume or advance a protocol. */
import type { Profile, MovaDocument } from "../mova/schema.ts";
import type { EnginePorts } from "../ports.ts";
import type { ChildRunEnded, RunState, StepRecord, SuspendedRun } from "../core/run.ts";
import type { ConversationTurn } from "../core/conversation.ts";

/** A run's deadline when its protocol sets no `deadline_ms`: 24 hours from its start. */
export const DEFAULT_RUN_DEADLINE_MS = 86_400_000;

export interface RunContext {
  /** Session data, readable as `session.*`. */
  session?: Record<string, unknown>;
  /** The session user's profile, readable as `profile.*`. */
  profile?: Profile;
  /** The recognised intent name, readable as `intent`. */
  intent?: string;
  /** `{callback.EVENT}`: the signed URL that delivers EVENT to this execution (none: unresolved). */
  callbackUrl?: (event: string) => string | undefined;
  /**
   * The session's conversation before this run (user messages and replies shown, oldest
   * first): prompt steps with `memory.turns` or `history` send its last turns to the model.
   */
  conversation?: ConversationTurn[];
}

export interface RunOptions extends RunContext {
  document: MovaDocument;
  protocol: string;
  variables?: Record<string, unknown>;
  ports: EnginePorts;
  /** Overrides the protocol's `max_steps`. */
  maxSteps?: number;
  /**
   * The run's deadline from its start, overriding the protocol's `deadline_ms` (default 24 h).
   * It is saved with the run and holds across suspensions.
   */
  deadlineMs?: number;
  /**
   * A limit on this call only, from its start: a request that cannot hand the run on (the API
   * request's RUN_DEADLINE_MS). When it passes, the call in flight is aborted and the run ends
   * `timed_out`. It never becomes the run's deadline: a run resumed later gets its own budget.
   */
  budgetMs?: number;
  /** The execution's id: with it, every tool call carries an Idempotency-Key (see idempotency-key.ts). */
  executionId?: string;
  /** Called as each step finishes (the history records them). */
  onStep?: (record: StepRecord) => void;
  /**
   * Streams prompt steps: called with each piece of a reply's text as the model writes it
   * (for a run's live event stream). Steps with a `response_schema` do not stream (their JSON
   * is data, not a reply). Without it the model is asked for whole answers; with it or
   * without, the run's result is the same. A throw from it is ignored.
   */
  onToken?: (stepId: string, delta: string) => void;
  /**
   * Called as each child run of a `call` or `foreach` step ends (children of children too),
   * with its whole result: the caller records it as an execution of its own. Only runs with
   * an `executionId` have children with ids, so only they call it. A throw from it is ignored.
   */
  onChildRun?: (child: ChildRunEnded) => void;
  /** Called as each step is entered, before it runs (live run events); `visit` counts from 1. */
  onStepStart?: (step: { id: string; action: string; visit: number }) => void;
  /** Cancels the run; it ends `failed` with code `cancelled` (advanceRun: status `cancelled`). */
  signal?: AbortSignal;
}

/** The run's deadline was fixed when it started: a resume takes none (`budgetMs` bounds this call). */
export interface ResumeOptions extends Omit<RunOptions, "protocol" | "variables" | "deadlineMs"> {
  suspended: SuspendedRun;
  /** The user's reply to the `input` step waited on. */
  reply: string;
}

/**
 * Called, and awaited, after every step with the run's state after it and the step records
 * the step produced (a `parallel` step's branches first, its own record last; none for an
 * `input` step that suspends the run). A hook that throws stops the run: the last state it
 * accepted stands. A MovaError `state_too_large` from it fails the step instead.
 */
export type CheckpointHook = (state: RunState, records: StepRecord[]) => Promise<void>;

export interface AdvanceOptions extends Omit<RunOptions, "protocol" | "variables" | "deadlineMs"> {
  /** Where the run stands: a new run's state (newRunState), a checkpoint, or a previous result's `state`. */
  state: RunState;
  /** The reply to the `input` step a `waiting_input` state waits on. */
  reply?: string;
  /**
   * An event for the `wait_event` step the run is paused at: its payload goes to the step's
   * `output`. MovaError `not_waiting_for_event` (409) when the run waits for no such event.
   */
  event?: { name: string; payload: unknown };
  checkpoint?: CheckpointHook;
  /**
   * Asked after each step (once its checkpoint is written): true stops the run there with
   * status `running` (a request's SYNC_BUDGET_MS, a runner's remaining time). Every call
   * advances the run by one step at least.
   */
  shouldPause?: () => boolean;
  /** Keep this call's step records in the result's `steps` (default true); long runs get them through the hooks. */
  keepSteps?: boolean;
}

export interface NewRunStateOptions {
  document: MovaDocument;
  protocol: string;
  variables?: Record<string, unknown>;
  /** Overrides the protocol's `deadline_ms` (default 24 h). */
  deadlineMs?: number;
  /** Epoch ms of the run's start; `Date.now()` by default. */
  now?: number;
}
