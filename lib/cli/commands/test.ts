/**
 * `mova test <file> --step <id> | --tool <id>`: exercises one step or one tool on its own.
 * The step (or a `tool_api` step calling the tool) runs through the real engine inside a
 * one-step protocol, so templates, retries, timeouts and secrets behave exactly as in a run;
 * only the flow around it is left out.
 */
import { dryRun } from "../../engine/dry-run.ts";
import { runProtocol } from "../../engine/engine.ts";
import type { RunResult, StepRecord } from "../../core/run.ts";
import type { Condition, MovaDocument, Protocol, Step } from "../../mova/schema.ts";
import { dryRunLines, stepLine } from "../format.ts";
import { CliError, type CliIo, EXIT, styleFor, writeLine } from "../io.ts";
import { loadRunnableDocument } from "../load.ts";
import { offlineNotice, portsFrom } from "../ports.ts";
import { parseVariables } from "../vars.ts";

interface TestCommandOptions {
  step?: string;
  tool?: string;
  protocol?: string;
  var?: string[];
  json?: boolean;
  dryRun?: boolean;
}

const HARNESS = "__mova_test__";
const HARNESS_END = "__mova_test_end__";

function findStep(document: MovaDocument, file: string, stepId: string, protocolName?: string) {
  const candidates = document.protocols.filter((protocol) => !protocolName || protocol.name === protocolName);
  if (protocolName && candidates.length === 0)
    throw new CliError("unknown_protocol", `${file}: no protocol named "${protocolName}"`);
  const owners = candidates.filter((protocol) => protocol.steps.some((step) => step.id === stepId));
  if (owners.length === 0) {
    throw new CliError(
      "unknown_step",
      `${file}: no step "${stepId}"${protocolName ? ` in protocol ${protocolName}` : ""}`,
    );
  }
  if (owners.length > 1) {
    throw new CliError(
      "ambiguous_step",
      `${file}: step "${stepId}" is in several protocols (${owners.map((p) => p.name).join(", ")}); choose one with --protocol`,
    );
  }
  const protocol = owners[0]!;
  return { protocol, step: protocol.steps.find((step) => step.id === stepId)! };
}

/** The step alone, its exits pointing at a closing `end`; a `parallel` step keeps its branches. */
function harnessForStep(protocol: Protocol, step: Step): Protocol {
  const { on_error: _onError, ...rest } = step;
  const detached = { ...rest, next_step: HARNESS_END } as Step;
  if (detached.action === "condition") {
    detached.else_step = HARNESS_END;
    // The specification's rules and groups name their own next steps: those lead to the end too.
    const conditions = detached.conditions;
    const closeRules = (rules: Condition[]) =>
      rules.map((rule) => (rule.next_step_id === undefined ? rule : { ...rule, next_step_id: HARNESS_END }));
    detached.conditions = Array.isArray(conditions)
      ? closeRules(conditions)
      : {
          ...conditions,
          rules: closeRules(conditions.rules),
          ...(conditions.default_next_step_id !== undefined && { default_next_step_id: HARNESS_END }),
        };
  }
  const branches =
    step.action === "parallel"
      ? protocol.steps
          .filter((candidate) => step.steps.includes(candidate.id))
          .map((branch) => ({ ...branch, next_step: HARNESS_END }) as Step)
      : [];
  return {
    name: HARNESS,
    start: step.id,
    max_steps: protocol.max_steps,
    ...(protocol.deadline_ms ? { deadline_ms: protocol.deadline_ms } : {}),
    steps: [detached, ...branches, { id: HARNESS_END, action: "end" }],
  };
}

function harnessForTool(toolId: string): Protocol {
  return {
    name: HARNESS,
    max_steps: 10,
    steps: [
      {
        id: `call_${toolId}`,
        action: "tool_api",
        tool_api_id: toolId,
        output: "response",
        next_step: HARNESS_END,
      },
      { id: HARNESS_END, action: "end" },
    ],
  };
}

export async function testCommand(io: CliIo, file: string, options: TestCommandOptions): Promise<number> {
  if (Boolean(options.step) === Boolean(options.tool)) {
    throw new CliError("usage", "mova test: give exactly one of --step <id> or --tool <id>");
  }
  const style = styleFor(io);
  const variables = parseVariables(options.var);
  const { document } = await loadRunnableDocument(file);

  let harness: Protocol;
  let targetId: string;
  if (options.step) {
    const { protocol, step } = findStep(document, file, options.step, options.protocol);
    harness = harnessForStep(protocol, step);
    targetId = step.id;
  } else {
    const toolId = options.tool!;
    if (!document.tools.some((tool) => tool.id === toolId)) {
      const known = document.tools.map((tool) => tool.id);
      throw new CliError(
        "unknown_tool",
        `${file}: no tool "${toolId}"; ${known.length ? `the document has: ${known.join(", ")}` : "the document has no tools"}`,
      );
    }
    harness = harnessForTool(toolId);
    targetId = `call_${toolId}`;
  }
  const testDocument: MovaDocument = { ...document, protocols: [...document.protocols, harness] };

  if (options.dryRun) {
    const plan = dryRun(testDocument, HARNESS, variables);
    if (options.json) writeLine(io.stdout, JSON.stringify(plan));
    else for (const line of dryRunLines(plan, style)) writeLine(io.stdout, line);
    return plan.stoppedAt.reason === "failed" ? EXIT.failed : EXIT.ok;
  }

  const result = await runProtocol({
    document: testDocument,
    protocol: HARNESS,
    variables,
    ports: portsFrom(io),
  });
  if (result.offline) offlineNotice(io)();
  const record = result.steps.find((candidate) => candidate.id === targetId);
  return options.tool
    ? reportTool(io, options.tool, result, record, options.json, style)
    : reportStep(io, result, record, options.json, style);
}

function reportTool(
  io: CliIo,
  toolId: string,
  result: RunResult,
  record: StepRecord | undefined,
  json: boolean | undefined,
  style: ReturnType<typeof styleFor>,
): number {
  const succeeded = record?.status === "succeeded";
  const error = record?.error ?? result.error;
  if (json) {
    writeLine(
      io.stdout,
      JSON.stringify({
        tool: toolId,
        status: succeeded ? "succeeded" : "failed",
        httpStatus: record?.httpStatus ?? null,
        attempts: record?.attempts ?? 0,
        durationMs: record?.durationMs ?? result.durationMs,
        body: record?.output ?? null,
        unresolved: result.unresolved,
        ...(error && !succeeded ? { error } : {}),
      }),
    );
  } else {
    const head = record?.httpStatus !== undefined ? `HTTP ${record.httpStatus}` : "no response";
    writeLine(io.stdout, succeeded ? style.green(`${toolId}: ${head}`) : style.red(`${toolId}: ${head}`));
    if (record?.output !== undefined) {
      writeLine(
        io.stdout,
        typeof record.output === "string" ? record.output : JSON.stringify(record.output, null, 2),
      );
    }
    if (!succeeded && error) writeLine(io.stderr, style.red(`[${error.code}] ${error.message}`));
    if (result.unresolved.length)
      writeLine(io.stderr, style.yellow(`unresolved placeholders: ${result.unresolved.join(", ")}`));
  }
  return succeeded ? EXIT.ok : EXIT.failed;
}

function reportStep(
  io: CliIo,
  result: RunResult,
  record: StepRecord | undefined,
  json: boolean | undefined,
  style: ReturnType<typeof styleFor>,
): number {
  if (json) {
    writeLine(
      io.stdout,
      JSON.stringify({
        status: result.status === "waiting_input" ? "waiting_input" : (record?.status ?? "failed"),
        step: record ?? null,
        unresolved: result.unresolved,
        ...(result.waitingFor ? { waitingFor: result.waitingFor } : {}),
        ...(result.error ? { error: result.error } : {}),
      }),
    );
  } else {
    if (record) writeLine(io.stdout, stepLine(record, style));
    if (record?.output !== undefined) {
      writeLine(
        io.stdout,
        typeof record.output === "string" ? record.output : JSON.stringify(record.output, null, 2),
      );
    }
    if (result.waitingFor) writeLine(io.stdout, style.yellow(`waits for input: ${result.waitingFor.prompt}`));
    if (!record && result.error)
      writeLine(io.stderr, style.red(`[${result.error.code}] ${result.error.message}`));
    if (result.unresolved.length)
      writeLine(io.stderr, style.yellow(`unresolved placeholders: ${result.unresolved.join(", ")}`));
  }
  if (result.status === "waiting_input") return EXIT.waiting;
  return record && record.status !== "failed" ? EXIT.ok : EXIT.failed;
}
