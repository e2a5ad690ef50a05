/** What a step answers (an Outcome) and where the run goes after it (a Transition). */
import type { InputStep, WaitEventStep, WaitStep } from "../mova/schema.ts";
import type { RunPause, StepError, RunStatus } from "../core/run.ts";

/** The statuses a run never leaves. */
export const FINISHED: ReadonlySet<RunStatus> = new Set(["completed", "failed", "timed_out", "cancelled"]);

export type SuspendOutcome = {
  kind: "suspend";
  step: InputStep;
  prompt: string;
  since: string;
  /** Replies the step's `validate` refused so far (a form asking again). */
  failedReplies?: number;
};

/** A `wait` or `wait_event` step that pauses the run (status `running`, no compute meanwhile). */
export type PauseOutcome = { kind: "pause"; step: WaitStep | WaitEventStep; pause: RunPause };

export type Outcome =
  | { kind: "goto"; stepId: string | undefined }
  | { kind: "complete" }
  | { kind: "fail"; error: StepError }
  | { kind: "stop" }
  | SuspendOutcome
  | PauseOutcome;

/** Where a run goes after a step: on to another, or to an end (a finished status or a wait). */
export type Transition =
  | { kind: "next"; stepId: string }
  | { kind: "end"; status: RunStatus; error?: StepError; suspend?: SuspendOutcome; pause?: PauseOutcome };
