/**
 * A dry run walks a protocol's flow without calling anything and says what each step would
 * call. Values only a real run would have (LLM replies, tool bodies, user input) are
 * unknown: conditions depending on them take their "then" branch, guards depending on them
 * are taken to hold. Secrets are never read, so their placeholders stay as written.
 */
import { MovaError, isMovaError } from "../errors.ts";
import {
  allRules,
  evaluateConditions,
  FOLLOWING,
  hasConditions,
  routeCondition,
} from "../mova/conditions.ts";
import { compileOperand, operandPaths } from "../mova/expression.ts";
import { followingStepId } from "../mova/steps.ts";
import { profilePreferenceLines } from "../mova/profile-preferences.ts";
import { renderTemplate, type Resolver } from "../mova/placeholders.ts";
import {
  type Conditions,
  type MovaDocument,
  type Profile,
  type Step,
  systemMessageOf,
} from "../mova/schema.ts";
import { resolveRetryPolicy } from "./retry.ts";
import { buildToolRequest } from "./tool-request.ts";
import type { StepError } from "../core/run.ts";
import { createResolver } from "./variables.ts";

export interface DryRunStep {
  id: string;
  action: Step["action"];
  /** `prompt` and `input`: the rendered prompt; `prompt`: the system message and model too. */
  prompt?: string;
  system?: string;
  /** The step's model (its preset's when it sets none); a fallback list joined with ", ". */
  model?: string;
  /** `prompt` / `input` / `tool_api`: where the result would be stored. */
  outputVariable?: string;
  /** `tool_api`: the request that would be sent. */
  toolId?: string;
  method?: string;
  url?: string;
  query?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Tries in all and the per-attempt timeout, for `prompt` and `tool_api`. */
  attempts?: number;
  timeoutMs?: number;
  /** `condition`: the branch taken, and whether it was evaluated or assumed (unknown variables). */
  branch?: "then" | "else";
  assumed?: boolean;
  /** `parallel`: what each branch would call. */
  branches?: DryRunStep[];
  /** `end`: the rendered response template. */
  output?: string;
  /** The guard does not hold on the known variables: the step would be skipped. */
  skipped?: boolean;
  /** The request could not be built (an invalid header, method or endpoint). */
  error?: StepError;
}

type DryRunStop = "end" | "completed" | "input" | "loop" | "failed";

export interface DryRunResult {
  protocol: string;
  steps: DryRunStep[];
  /** Why the walk stopped: an `end` step, the end of the list or an else without target, an `input` step, a step met twice, or a step that cannot run. */
  stoppedAt: { reason: DryRunStop; stepId?: string };
  /** Placeholders with no value in the dry run (step outputs and secrets among them). */
  unresolved: string[];
}

/** Whether every rule (nested ones too) reads only values the dry run knows. */
function conditionsKnown(conditions: Conditions, resolve: Resolver): boolean {
  return allRules(conditions).every((rule) => {
    if (rule.variable === undefined) return true;
    const compiled = compileOperand(rule.variable);
    return !compiled.ok || operandPaths(compiled.operand).every((path) => resolve(path) !== undefined);
  });
}

/** The way a condition step takes when its values are unknown: the first rule's step, else the following. */
function assumedRoute(conditions: Conditions): string | typeof FOLLOWING {
  const rules = Array.isArray(conditions) ? conditions : conditions.rules;
  return rules[0]?.next_step_id ?? FOLLOWING;
}

export function dryRun(
  document: MovaDocument,
  protocolName: string,
  variables: Record<string, unknown> = {},
  context: { session?: Record<string, unknown>; profile?: Profile } = {},
): DryRunResult {
  const protocol = document.protocols.find((item) => item.name === protocolName);
  if (!protocol)
    throw new MovaError("unknown_protocol", `the protocol "${protocolName}" does not exist in the document`);
  const values = structuredClone(variables);
  // No secrets port: a dry run never reads a secret.
  const resolve = createResolver({
    variables: values,
    session: context.session,
    sessionDefaults: document.session?.data,
    profile: context.profile,
    now: () => Date.now(),
  });
  const unresolved: string[] = [];
  const render = (template: string): string => {
    const rendered = renderTemplate(template, resolve);
    for (const path of rendered.unresolved) if (!unresolved.includes(path)) unresolved.push(path);
    return rendered.text;
  };
  const byId = new Map(protocol.steps.map((step, index) => [step.id, index] as const));
  const following = (step: Step): string | undefined =>
    step.next_step ?? followingStepId(protocol, byId.get(step.id) ?? Number.POSITIVE_INFINITY);

  const describeCallable = (step: Step): DryRunStep => {
    const entry: DryRunStep = { id: step.id, action: step.action };
    if (step.action === "prompt") {
      entry.prompt = render(step.prompt);
      const preset = step.preset !== undefined ? document.presets[step.preset] : undefined;
      const systemTemplate = systemMessageOf(step) ?? (preset ? systemMessageOf(preset) : undefined);
      const system = [
        ...(systemTemplate ? [render(systemTemplate)] : []),
        ...(step.instructions ?? []).map(
          (id) => document.instructions.find((item) => item.id === id)?.content ?? "",
        ),
        profilePreferenceLines(resolve) ?? "",
      ].filter((part) => part !== "");
      if (system.length > 0) entry.system = system.join("\n\n");
      const model = step.model ?? preset?.model;
      if (model) entry.model = Array.isArray(model) ? model.join(", ") : model;
      entry.outputVariable = step.output ?? `prompt_response_${step.id}`;
      entry.attempts = resolveRetryPolicy(step.retry).attempts;
      if (step.timeout_ms !== undefined) entry.timeoutMs = step.timeout_ms;
    } else if (step.action === "tool_api") {
      entry.toolId = step.tool_api_id;
      entry.outputVariable = step.output ?? `${step.id}_result`;
      const tool = document.tools.find((item) => item.id === step.tool_api_id);
      if (!tool) {
        entry.error = { code: "unknown_reference", message: `the tool "${step.tool_api_id}" does not exist` };
        return entry;
      }
      entry.attempts = resolveRetryPolicy(step.retry, tool.retry).attempts;
      const timeoutMs = step.timeout_ms ?? tool.timeout_ms;
      if (timeoutMs !== undefined) entry.timeoutMs = timeoutMs;
      try {
        const built = buildToolRequest(tool, resolve, { timeoutMs });
        for (const path of built.unresolved) if (!unresolved.includes(path)) unresolved.push(path);
        entry.method = built.request.method;
        entry.url = built.request.url;
        if (built.request.query) entry.query = built.request.query;
        if (built.request.body !== undefined) entry.body = built.request.body;
        entry.headers = built.request.headers;
      } catch (error) {
        const code = isMovaError(error) ? error.code : "tool_error";
        entry.error = { code, message: (error as Error).message };
      }
    }
    return entry;
  };

  /** A guard is taken to hold unless it reads only known values and fails on them. */
  const guardSkips = (step: Step): boolean =>
    step.action !== "condition" &&
    !!step.conditions &&
    hasConditions(step.conditions) &&
    conditionsKnown(step.conditions, resolve) &&
    !evaluateConditions(step.conditions, resolve);

  const steps: DryRunStep[] = [];
  const visited = new Set<string>();
  let current: string | undefined = protocol.start ?? protocol.steps[0]?.id;
  const stop = (reason: DryRunStop, stepId?: string): DryRunResult => ({
    protocol: protocol.name,
    steps,
    stoppedAt: stepId === undefined ? { reason } : { reason, stepId },
    unresolved,
  });

  while (current !== undefined) {
    if (visited.has(current)) return stop("loop", current);
    visited.add(current);
    const index = byId.get(current);
    const step = index === undefined ? undefined : protocol.steps[index];
    if (!step) {
      steps.push({
        id: current,
        action: "end",
        error: { code: "unknown_reference", message: `the step "${current}" does not exist` },
      });
      return stop("failed", current);
    }
    if (guardSkips(step)) {
      steps.push({ id: step.id, action: step.action, skipped: true });
      current = following(step);
      continue;
    }
    switch (step.action) {
      case "prompt":
      case "tool_api": {
        const entry = describeCallable(step);
        steps.push(entry);
        if (entry.error) return stop("failed", step.id);
        current = following(step);
        break;
      }
      case "input":
        steps.push({
          id: step.id,
          action: "input",
          prompt: render(step.prompt),
          outputVariable: step.variable,
        });
        return stop("input", step.id);
      case "condition": {
        const known = conditionsKnown(step.conditions, resolve);
        // Unknown values: the first way the conditions can lead ("then"), as before.
        const route: { holds: boolean; next: string | typeof FOLLOWING | undefined } = known
          ? routeCondition(step.conditions, step, resolve)
          : { holds: true, next: assumedRoute(step.conditions) };
        steps.push({
          id: step.id,
          action: "condition",
          branch: route.holds ? "then" : "else",
          assumed: !known,
        });
        const next = route.next === FOLLOWING ? following(step) : route.next;
        if (next === undefined) return stop("completed", step.id);
        current = next;
        break;
      }
      case "parallel": {
        const branches = step.steps.map((id): DryRunStep => {
          const branch = protocol.steps.find((item) => item.id === id);
          if (!branch) {
            return {
              id,
              action: "end",
              error: { code: "unknown_reference", message: `the branch "${id}" does not exist` },
            };
          }
          if (branch.action !== "prompt" && branch.action !== "tool_api") {
            return {
              id,
              action: branch.action,
              error: {
                code: "invalid_parallel_branch",
                message: `a ${branch.action} step cannot run in parallel`,
              },
            };
          }
          return guardSkips(branch) ? { id, action: branch.action, skipped: true } : describeCallable(branch);
        });
        steps.push({ id: step.id, action: "parallel", branches });
        if (branches.some((branch) => branch.error)) return stop("failed", step.id);
        current = following(step);
        break;
      }
      case "call":
      case "foreach":
        // A dry run does not enter children: it goes on as if they completed.
        steps.push({ id: step.id, action: step.action });
        current = following(step);
        break;
      case "wait":
      case "wait_event":
        // A dry run does not wait: it goes on as if the wait ended or the event arrived.
        steps.push({ id: step.id, action: step.action });
        current = following(step);
        break;
      case "end": {
        const entry: DryRunStep = { id: step.id, action: "end" };
        if (step.response_template !== undefined) entry.output = render(step.response_template);
        steps.push(entry);
        return stop("end", step.id);
      }
    }
  }
  return stop("completed");
}
