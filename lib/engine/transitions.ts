/** Where a run goes after a step's outcome, and why it ends when it is stopped from outside. */
import type { LiveRun } from "./live-run.ts";
import type { Outcome, Transition } from "./flow.ts";
import { type StopKind, stopError } from "./run-stop.ts";

/** The end of a run stopped from outside: its deadline or budget passed, or it was cancelled. */
export function stopped(kind: StopKind): Transition {
  return { kind: "end", status: kind === "cancelled" ? "cancelled" : "timed_out", error: stopError(kind) };
}

/** The flow ran out of steps: completed, unless the run was stopped meanwhile. */
export function endOfFlow(state: LiveRun): Transition {
  const kind = state.stopKind();
  return kind ? stopped(kind) : { kind: "end", status: "completed" };
}

export function transitionOf(state: LiveRun, outcome: Outcome): Transition {
  switch (outcome.kind) {
    case "goto":
      return outcome.stepId === undefined ? endOfFlow(state) : { kind: "next", stepId: outcome.stepId };
    case "complete":
      return { kind: "end", status: "completed" };
    case "fail":
      return { kind: "end", status: "failed", error: outcome.error };
    case "stop":
      return stopped(state.stopKind() ?? "cancelled");
    case "suspend":
      return { kind: "end", status: "waiting_input", suspend: outcome };
  }
}
