/** Runs one step of any kind: its guard first, then the step's own file. */
import type { Step } from "../../mova/schema.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome } from "../flow.ts";
import { guardHolds, skippedRecord } from "../step-record.ts";
import { callableOutcome } from "./callable.ts";
import { executeCondition } from "./condition.ts";
import { executeEnd } from "./end.ts";
import { executeInput } from "./input.ts";
import { executeParallel } from "./parallel.ts";
import { executePrompt } from "./prompt.ts";
import { executeTool } from "./tool.ts";
import { executeWait, executeWaitEvent } from "./wait.ts";
import { executeCall, executeForeach } from "./sub-protocol.ts";

export async function executeStep(state: LiveRun, step: Step): Promise<Outcome> {
  if (!guardHolds(state, step)) {
    state.record(skippedRecord(state, step));
    return { kind: "goto", stepId: state.following(step) };
  }
  switch (step.action) {
    case "prompt":
    case "tool_api": {
      const result =
        step.action === "prompt" ? await executePrompt(state, step) : await executeTool(state, step);
      state.record(result.record);
      return callableOutcome(state, step, result);
    }
    case "input": {
      return executeInput(state, step);
    }
    case "condition":
      return executeCondition(state, step);
    case "parallel":
      return executeParallel(state, step);
    case "end":
      return executeEnd(state, step);
    case "wait":
      return executeWait(state, step);
    case "wait_event":
      return executeWaitEvent(state, step);
    case "call":
      return executeCall(state, step);
    case "foreach":
      return executeForeach(state, step);
  }
}
