/** A run stopped from outside its steps: why, and the error its records and result carry. */
import type { StepError } from "../core/run.ts";

/** Why a run was stopped from outside its steps: its deadline, this call's budget, or the caller. */
export type StopKind = "deadline" | "budget" | "cancelled";

export const STOP_MESSAGES: Record<StopKind, string> = {
  deadline: "the run's deadline passed",
  budget: "the time given to this call ran out",
  cancelled: "the run was cancelled",
};

export class RunStop extends Error {
  readonly kind: StopKind;
  constructor(kind: StopKind) {
    super(STOP_MESSAGES[kind]);
    this.kind = kind;
  }
}

/** A budget that runs out is a timeout to the caller, as a deadline is. */
export function stopError(kind: StopKind): StepError {
  return { code: kind === "cancelled" ? "cancelled" : "deadline", message: STOP_MESSAGES[kind] };
}
