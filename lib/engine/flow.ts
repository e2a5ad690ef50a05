/** What a step answers (an Outcome) and where the run goes after it (a Transition). */
import type { InputStep } from "../mova/schema.ts";
import type { StepError, RunStatus } from "../core/run.ts";

/** The statuses a run never leaves. */
export const FINISHED: ReadonlySet<RunStatus> = new Set(["completed", "failed", "timed_out", "cancelled"]);

export type SuspendOutcome = { kind: "suspend"; step: InputStep; prompt: string; since: string };

export type Outcome =
  | { kind: "goto"; stepId: string | undefined }
  | { kind: "complete" }
  | { kind: "fail"; error: StepError }
  | { kind: "stop" }
  | SuspendOutcome;

/** Where a run goes after a step: on to another, or to an end (a finished status or a wait). */
export type Transition =
  | { kind: "next"; stepId: string }
  | { kind: "end"; status: RunStatus; error?: StepError; suspend?: SuspendOutcome };
