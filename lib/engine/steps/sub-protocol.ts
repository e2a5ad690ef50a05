/**
 * The `call` and `foreach` steps: another protocol of the document runs as a child of this run,
 * with its own variables (the step's `input`, and for `foreach` the item), the parent's ports,
 * tenant, deadline and cancellation. A child that fails fails the step (then `on_error`
 * applies as to any step). A child must finish inside its parent's step: one that waits for
 * input or pauses fails the step with `child_not_finished`.
 */
import { MAX_CALL_DEPTH, DEFAULT_FOREACH_CONCURRENCY, MAX_FOREACH_ITEMS } from "../../mova/schema.ts";
import type { CallStep, ForeachStep, Protocol } from "../../mova/schema.ts";
import { parseTemplate, renderValue } from "../../mova/placeholders.ts";
import { defaultOutputVariable } from "../../mova/steps.ts";
import {
  type ChildRunEnded,
  type ChildRunRecord,
  childExecutionId,
  type RunResult,
  type StepError,
  type StepRecord,
} from "../../core/run.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome } from "../flow.ts";
import { stopError } from "../run-stop.ts";
import { baseRecord, finishRecord, stepFailure } from "../step-record.ts";

type SubStep = CallStep | ForeachStep;

export async function executeCall(state: LiveRun, step: CallStep): Promise<Outcome> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  const target = childProtocol(state, step);
  if ("error" in target) return fail(state, step, record, startedMs, target.error);
  const variables = childVariables(state, step, target.protocol, {});
  if ("error" in variables) return fail(state, step, record, startedMs, variables.error);
  const child = await runOne(state, step, target.protocol, variables.values, undefined);
  record.children = [child.record];
  if (state.stopKind()) return stop(state, record, startedMs);
  if (child.result.status !== "completed") return fail(state, step, record, startedMs, childFailure(child));
  return succeed(state, step, record, startedMs, child.result.output);
}

export async function executeForeach(state: LiveRun, step: ForeachStep): Promise<Outcome> {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  const target = childProtocol(state, step);
  if ("error" in target) return fail(state, step, record, startedMs, target.error);
  const items = listOf(state, step);
  if ("error" in items) return fail(state, step, record, startedMs, items.error);
  const as = step.as ?? "item";
  const concurrency = Math.min(step.concurrency ?? DEFAULT_FOREACH_CONCURRENCY, items.values.length);
  const children: Array<{ record: ChildRunRecord; result: RunResult } | undefined> = [];
  let failure: StepError | undefined;
  let next = 0;
  // A pool of `concurrency` workers taking the next item each: at most that many children at
  // once. After the first failure (or a stop) no new child starts; those running finish.
  const worker = async (): Promise<void> => {
    while (next < items.values.length && failure === undefined && !state.signal.aborted) {
      const index = next;
      next += 1;
      const variables = childVariables(state, step, target.protocol, {
        [as]: items.values[index],
        index,
      });
      if ("error" in variables) {
        failure ??= variables.error;
        return;
      }
      const child = await runOne(state, step, target.protocol, variables.values, index);
      children[index] = child;
      if (child.result.status !== "completed" && failure === undefined) {
        const cause = childFailure(child);
        failure = { code: cause.code, message: `item ${index}: ${cause.message}` };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  record.children = children.filter((child) => child !== undefined).map((child) => child.record);
  if (state.stopKind()) return stop(state, record, startedMs);
  if (failure) return fail(state, step, record, startedMs, failure);
  const outputs = children.map((child) => child?.result.output ?? null);
  return succeed(state, step, record, startedMs, outputs);
}

function childProtocol(state: LiveRun, step: SubStep): { protocol: Protocol } | { error: StepError } {
  const protocol = state.document.protocols.find((item) => item.name === step.protocol);
  if (!protocol)
    return {
      error: { code: "unknown_reference", message: `the protocol "${step.protocol}" does not exist` },
    };
  if (state.callDepth >= MAX_CALL_DEPTH) {
    return {
      error: {
        code: "call_depth_exceeded",
        message: `children may nest ${MAX_CALL_DEPTH} deep; "${step.protocol}" would be deeper`,
      },
    };
  }
  return { protocol };
}

/** The child's variables: the step's `input` rendered (one placeholder alone keeps its type), then `extra`. */
function childVariables(
  state: LiveRun,
  step: SubStep,
  protocol: Protocol,
  extra: Record<string, unknown>,
): { values: Record<string, unknown> } | { error: StepError } {
  const unresolved: string[] = [];
  const values = Object.assign(
    Object.create(null) as Record<string, unknown>,
    renderValue(step.input ?? {}, state.resolve, unresolved),
    extra,
  );
  state.noteUnresolved(unresolved);
  const missing = (protocol.inputs ?? []).filter((name) => values[name] === undefined);
  if (missing.length > 0) {
    return {
      error: {
        code: "missing_input",
        message: `the protocol "${protocol.name}" needs ${missing.map((name) => `"${name}"`).join(", ")}`,
      },
    };
  }
  return { values };
}

/** The list `items` names: exactly one placeholder whose value is an array. */
function listOf(state: LiveRun, step: ForeachStep): { values: unknown[] } | { error: StepError } {
  const parts = parseTemplate(step.items);
  const only = parts.length === 1 && parts[0]?.kind === "placeholder" ? parts[0] : undefined;
  const value = only ? state.resolve(only.path) : undefined;
  if (!Array.isArray(value))
    return { error: { code: "items_not_a_list", message: `items ${step.items} is not a list` } };
  if (value.length > MAX_FOREACH_ITEMS) {
    return {
      error: {
        code: "too_many_items",
        message: `items holds ${value.length} entries; a foreach step runs at most ${MAX_FOREACH_ITEMS}`,
      },
    };
  }
  return { values: value };
}

/**
 * Runs one child. Its execution id extends the parent's with the step, its visit and the item,
 * so the child's tool calls get Idempotency-Keys of their own, and the same ones when the
 * parent's step runs again after a crash. The child's whole result goes to the caller's
 * `onChildRun` (its own history item); the parent's record keeps its summary.
 */
async function runOne(
  state: LiveRun,
  step: SubStep,
  protocol: Protocol,
  variables: Record<string, unknown>,
  index: number | undefined,
): Promise<{ record: ChildRunRecord; result: RunResult }> {
  const visit = state.visits[step.id] ?? 1;
  const parentExecutionId = state.executionId;
  const executionId =
    parentExecutionId === undefined ? undefined : childExecutionId(parentExecutionId, step.id, visit, index);
  const runChild = state.runChild;
  if (!runChild) throw new Error("a child run needs the run loop");
  const result = await runChild(state, protocol, variables, executionId);
  if (result.offline) state.offline = true;
  if (parentExecutionId !== undefined && executionId !== undefined) {
    const ended: ChildRunEnded = {
      executionId,
      parentExecutionId,
      parentStep: step.id,
      parentVisit: visit,
      result,
    };
    if (index !== undefined) ended.index = index;
    try {
      state.context.onChildRun?.(ended);
    } catch {
      // Recording the child is the caller's concern: it never fails the parent's step.
    }
  }
  const record: ChildRunRecord = {
    protocol: protocol.name,
    status: result.status,
    durationMs: result.durationMs,
    path: result.path,
  };
  if (index !== undefined) record.index = index;
  if (executionId !== undefined) record.executionId = executionId;
  if (result.error) record.error = result.error;
  return { record, result };
}

function childFailure(child: { result: RunResult }): StepError {
  const { result } = child;
  if (result.status === "waiting_input" || result.status === "running") {
    return {
      code: "child_not_finished",
      message: `the protocol "${result.protocol}" waited (${result.status}); a child must finish inside its step`,
    };
  }
  return {
    code: result.error?.code ?? "child_failed",
    message: `the protocol "${result.protocol}" ${result.status}: ${result.error?.message ?? ""}`,
  };
}

function succeed(
  state: LiveRun,
  step: SubStep,
  record: StepRecord,
  startedMs: number,
  output: unknown,
): Outcome {
  const variable = defaultOutputVariable(step) as string;
  state.setVariable(variable, output);
  state.setOutput(output, variable);
  record.output = output;
  record.outputVariable = variable;
  state.record(finishRecord(state, record, startedMs));
  return { kind: "goto", stepId: state.following(step) };
}

function fail(
  state: LiveRun,
  step: SubStep,
  record: StepRecord,
  startedMs: number,
  error: StepError,
): Outcome {
  record.status = "failed";
  record.error = error;
  state.record(finishRecord(state, record, startedMs));
  return { kind: "fail", error: stepFailure(step, error) };
}

function stop(state: LiveRun, record: StepRecord, startedMs: number): Outcome {
  record.status = "failed";
  record.error = stopError(state.stopKind() ?? "cancelled");
  state.record(finishRecord(state, record, startedMs));
  return { kind: "stop" };
}
