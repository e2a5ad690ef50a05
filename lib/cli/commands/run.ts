/** `mova run <file> --protocol <name> …`: one run in-process, answers fed to its `input` steps. */
import { dryRun } from "../../engine/dry-run.ts";
import { resumeRun, runProtocol } from "../../engine/engine.ts";
import type { RunResult, StepRecord } from "../../core/run.ts";
import type { MovaDocument } from "../../mova/schema.ts";
import { dryRunLines, stepLine, summaryLine } from "../format.ts";
import { CliError, type CliIo, EXIT, styleFor, writeLine } from "../io.ts";
import { issueLine, loadRunnableDocument } from "../load.ts";
import { offlineNotice, portsFrom } from "../ports.ts";
import { parseVariables, readJsonObjectOption } from "../vars.ts";
import { Profile } from "../../mova/schema.ts";

interface RunCommandOptions {
  protocol?: string;
  sessionData?: string;
  profile?: string;
  var?: string[];
  answer?: string[];
  json?: boolean;
  stepByStep?: boolean;
  dryRun?: boolean;
}

/** The protocol named, or the document's only one (several: they are listed, a usage error). */
function chooseProtocol(document: MovaDocument, file: string, name: string | undefined): string {
  if (name !== undefined) return requireProtocol(document, file, name).name;
  const names = document.protocols.map((protocol) => protocol.name);
  if (names.length === 1) return names[0] as string;
  if (names.length === 0) throw new CliError("unknown_protocol", `${file}: the document has no protocols`);
  throw new CliError(
    "protocol_required",
    `${file}: the document has ${names.length} protocols; choose one with --protocol: ${names.join(", ")}`,
  );
}

async function profileOption(text: string | undefined) {
  if (text === undefined) return undefined;
  const raw = await readJsonObjectOption("--profile", text);
  const parsed = Profile.safeParse({ user_id: "cli", ...raw });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(
      "invalid_profile",
      `--profile: ${issue?.path.join(".") || "the profile"}: ${issue?.message ?? "not a profile"}`,
    );
  }
  return parsed.data;
}

function requireProtocol(document: MovaDocument, file: string, name: string) {
  const protocol = document.protocols.find((candidate) => candidate.name === name);
  if (!protocol) {
    const known = document.protocols.map((candidate) => candidate.name);
    throw new CliError(
      "unknown_protocol",
      `${file}: no protocol named "${name}"; ${known.length ? `the document has: ${known.join(", ")}` : "the document has no protocols"}`,
    );
  }
  return protocol;
}

function exitCodeOf(result: RunResult): number {
  if (result.status === "completed") return EXIT.ok;
  if (result.status === "waiting_input") return EXIT.waiting;
  return EXIT.failed;
}

export async function runCommand(io: CliIo, file: string, options: RunCommandOptions): Promise<number> {
  const style = styleFor(io);
  const variables = parseVariables(options.var);
  const { document, warnings } = await loadRunnableDocument(file);
  const protocol = chooseProtocol(document, file, options.protocol);
  const session =
    options.sessionData === undefined
      ? undefined
      : await readJsonObjectOption("--session-data", options.sessionData);
  const profile = await profileOption(options.profile);
  const context = { ...(session && { session }), ...(profile && { profile }) };
  if (!options.json)
    for (const issue of warnings) writeLine(io.stderr, style.yellow(issueLine(file, "warning", issue)));

  if (options.dryRun) {
    const plan = dryRun(document, protocol, variables, context);
    if (options.json) writeLine(io.stdout, JSON.stringify(plan));
    else for (const line of dryRunLines(plan, style)) writeLine(io.stdout, line);
    return plan.stoppedAt.reason === "failed" ? EXIT.failed : EXIT.ok;
  }

  const ports = portsFrom(io);
  const onStep = options.stepByStep
    ? (record: StepRecord) => writeLine(options.json ? io.stderr : io.stdout, stepLine(record, style))
    : undefined;
  const answers = [...(options.answer ?? [])];
  // Each leg (the start, then each resume) reports only its own replies.
  const showReplies = (result: RunResult) => {
    if (options.json) return;
    for (const reply of result.replies) writeLine(io.stdout, reply);
  };

  let result = await runProtocol({ document, protocol, variables, ports, onStep, ...context });
  showReplies(result);
  while (result.status === "waiting_input" && result.suspended && answers.length > 0) {
    const reply = answers.shift()!;
    if (!options.json) writeLine(io.stdout, style.dim(`> ${reply}`));
    result = await resumeRun({ document, ports, suspended: result.suspended, reply, onStep, ...context });
    showReplies(result);
  }

  if (result.offline) offlineNotice(io)();
  if (options.json) writeLine(io.stdout, JSON.stringify(result));
  else writeLine(io.stderr, summaryLine(result, style));
  if (answers.length > 0) {
    writeLine(
      io.stderr,
      style.yellow(`note: ${answers.length} --answer value(s) left unused: the run asked for no more input`),
    );
  }
  return exitCodeOf(result);
}
