/** The `parallel` step: its prompt and tool branches run at once; the first failure fails the step. */
import type { ParallelStep, PromptStep, ToolApiStep } from "../../mova/schema.ts";
import type { StepError } from "../../core/run.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome } from "../flow.ts";
import { stopError } from "../run-stop.ts";
import { baseRecord, finishRecord, guardHolds, skippedRecord, stepFailure } from "../step-record.ts";
import type { CallableResult } from "./callable.ts";
import { executePrompt } from "./prompt.ts";
import { executeTool } from "./tool.ts";

/** A `prompt` or `tool_api` step with its guard, as run on its own or as a parallel branch. */
export async function executeCallable(
  state: LiveRun,
  step: PromptStep | ToolApiStep,
  parallelId?: string,
): Promise<CallableResult | null> {
  if (!guardHolds(state, step)) return null;
  return step.action === "prompt" ? executePrompt(state, step) : executeTool(state, step, parallelId);
}

export async function executeParallel(state: LiveRun, step: ParallelStep): Promise<Outcome> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  record.branches = [...step.steps];
  const branches: Array<PromptStep | ToolApiStep> = [];
  for (const id of step.steps) {
    const branch = state.step(id);
    if (!branch || (branch.action !== "prompt" && branch.action !== "tool_api")) {
      record.status = "failed";
      record.attempts = 0;
      record.error = {
        code: branch ? "invalid_parallel_branch" : "unknown_reference",
        message: branch
          ? `the branch "${id}" is a ${branch.action} step; only prompt and tool_api steps run in parallel`
          : `the branch "${id}" does not exist`,
      };
      state.record(finishRecord(state, record, startedMs));
      return { kind: "fail", error: stepFailure(step, record.error) };
    }
    branches.push(branch);
  }

  const results = await Promise.all(
    branches.map(async (branch) => {
      const result = await executeCallable(state, branch, step.id);
      const branchRecord = result ? result.record : skippedRecord(state, branch);
      state.emit(branchRecord);
      return { branch, result, branchRecord };
    }),
  );
  const outputs: Record<string, unknown> = {};
  const outputFrom: Record<string, string> = {};
  let failure: StepError | undefined;
  let stopped = false;
  for (const { branch, result, branchRecord } of results) {
    state.keep(branchRecord);
    if (result?.stopped) stopped = true;
    else if (result && !result.ok && !failure)
      failure = {
        code: result.error?.code ?? "step_failed",
        message: `branch "${branch.id}" failed: ${result.error?.message ?? ""}`,
      };
    if (result?.ok) {
      outputs[branch.id] = result.record.output;
      if (result.record.outputVariable !== undefined) outputFrom[branch.id] = result.record.outputVariable;
    }
  }
  if (stopped) {
    const kind = state.stopKind();
    record.status = "failed";
    record.error = stopError(kind ?? "cancelled");
    state.record(finishRecord(state, record, startedMs));
    return { kind: "stop" };
  }
  if (failure) {
    record.status = "failed";
    record.error = failure;
    state.record(finishRecord(state, record, startedMs));
    return { kind: "fail", error: stepFailure(step, failure) };
  }
  record.output = outputs;
  state.setOutput(outputs, outputFrom);
  state.record(finishRecord(state, record, startedMs));
  return { kind: "goto", stepId: state.following(step) };
}
