/** How runs and steps read on a terminal. */
import { stringifyValue } from "../mova/placeholders.ts";
import type { DryRunResult, DryRunStep } from "../engine/dry-run.ts";
import type { RunResult, StepRecord } from "../core/run.ts";
import type { Style } from "./io.ts";

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function preview(value: unknown, max = 200): string {
  const text = stringifyValue(value).replace(/\s+/g, " ");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function stepLine(record: StepRecord, style: Style): string {
  const head = `${style.bold(record.id)} ${style.dim(`(${record.action})`)}`;
  if (record.status === "skipped") return `${style.dim("-")} ${head} skipped`;
  const extras: string[] = [`${record.durationMs} ms`];
  if (record.attempts > 1) extras.push(plural(record.attempts, "attempt"));
  if (record.httpStatus !== undefined) extras.push(`HTTP ${record.httpStatus}`);
  if (record.branch) extras.push(`branch ${record.branch}`);
  if (record.offline) extras.push("offline");
  if (record.status === "failed") {
    const error = record.error ? `: [${record.error.code}] ${record.error.message}` : "";
    return `${style.red("✗")} ${head} failed (${extras.join(", ")})${error}`;
  }
  const stored =
    record.outputVariable !== undefined && record.output !== undefined
      ? ` ${style.dim(`${record.outputVariable} =`)} ${preview(record.output)}`
      : "";
  return `${style.green("✓")} ${head} (${extras.join(", ")})${stored}`;
}

export function summaryLine(result: RunResult, style: Style): string {
  const steps = plural(result.steps.length, "step");
  const took = `${result.durationMs} ms`;
  switch (result.status) {
    case "completed":
      return style.green(`completed: ${result.protocol}, ${steps} in ${took}`);
    case "waiting_input": {
      const at = result.waitingFor ? ` at step ${result.waitingFor.stepId}` : "";
      return style.yellow(`waiting for input${at} (${steps} so far); answer with --answer "<text>"`);
    }
    case "timed_out":
      return style.red(`timed out: ${result.protocol} after ${steps} in ${took}${errorSuffix(result)}`);
    default:
      return style.red(`failed: ${result.protocol} after ${steps} in ${took}${errorSuffix(result)}`);
  }
}

function errorSuffix(result: RunResult): string {
  return result.error ? `: [${result.error.code}] ${result.error.message}` : "";
}

/** A dry run as a plan: one line per step, with what it would call. */
export function dryRunLines(plan: DryRunResult, style: Style): string[] {
  const lines: string[] = [style.bold(`dry run of ${plan.protocol} (nothing is called)`)];
  const describe = (step: DryRunStep, indent: string) => {
    const head = `${indent}${style.bold(step.id)} ${style.dim(`(${step.action})`)}`;
    if (step.skipped) {
      lines.push(`${head} skipped: its guard does not hold`);
      return;
    }
    if (step.error) {
      lines.push(`${head} ${style.red(`cannot run: [${step.error.code}] ${step.error.message}`)}`);
      return;
    }
    switch (step.action) {
      case "tool_api": {
        const pairs = Object.entries(step.query ?? {}).map(([key, value]) => `${key}=${value}`);
        const query = pairs.length ? `?${pairs.join("&")}` : "";
        const body = step.body !== undefined ? ` body ${preview(step.body)}` : "";
        lines.push(`${head} ${step.method} ${step.url}${query}${body}`);
        break;
      }
      case "prompt":
        lines.push(`${head} LLM${step.model ? ` ${step.model}` : ""}: ${preview(step.prompt ?? "")}`);
        break;
      case "input":
        lines.push(`${head} asks: ${preview(step.prompt ?? "")}`);
        break;
      case "condition":
        lines.push(
          `${head} goes ${step.branch ?? "then"}${step.assumed ? " (assumed: depends on run values)" : ""}`,
        );
        break;
      case "end":
        lines.push(`${head}${step.output !== undefined ? ` outputs: ${preview(step.output)}` : ""}`);
        break;
      default:
        lines.push(head);
    }
    for (const branch of step.branches ?? []) describe(branch, `${indent}  `);
  };
  for (const step of plan.steps) describe(step, "  ");
  const at = plan.stoppedAt.stepId ? ` at ${plan.stoppedAt.stepId}` : "";
  lines.push(style.dim(`stops: ${plan.stoppedAt.reason}${at}`));
  if (plan.unresolved.length)
    lines.push(style.yellow(`unresolved until the run: ${plan.unresolved.join(", ")}`));
  return lines;
}
