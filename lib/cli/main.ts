/**
 * The `mova` command line. `main` returns the exit code instead of exiting, so the same
 * code runs from bin/mova.mjs and inside tests.
 *
 * Exit codes: 0 done (valid, completed), 1 invalid document or failed/timed-out run,
 * 2 usage (bad arguments, unreadable or unparsable file, unknown protocol), 3 a run waits
 * for input.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { analyzeCommand } from "./commands/analyze.ts";
import { chatCommand } from "./commands/chat.ts";
import { initCommand, STARTER_FILE } from "./commands/init.ts";
import { parseCommand } from "./commands/parse.ts";
import { reportCommand } from "./commands/report.ts";
import { runCommand } from "./commands/run.ts";
import { testCommand } from "./commands/test.ts";
import { validateCommand } from "./commands/validate.ts";
import { CliError, type CliIo, EXIT, styleFor, writeLine } from "./io.ts";
import { collect } from "./vars.ts";

export type { CliIo } from "./io.ts";

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

function defaultIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    isTTY: Boolean(process.stdout.isTTY),
  };
}

const EXIT_HELP = `
Exit codes:
  0  success (valid documents, run completed)
  1  invalid document, run failed or timed out
  2  usage error: bad arguments, unreadable or unparsable file, unknown protocol
  3  the run waits for input (give more --answer values)`;

function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const style = styleFor(io);
  const program = new Command("mova")
    .description("Validate, inspect and run MOVA documents locally.")
    .version(packageVersion())
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(style.red(text)),
    })
    .addHelpText("after", EXIT_HELP);

  program
    .command("validate")
    .description("check documents against the MOVA language; warnings do not fail")
    .argument("<file...>", "MOVA documents (.json, .yaml, .yml)")
    .option("--json", "print one JSON array of { file, valid, errors, warnings }")
    .action(async (files: string[], options: { json?: boolean }) =>
      setExit(await validateCommand(io, files, options)),
    );

  program
    .command("parse")
    .description("print the normalised document (defaults filled in, unknown fields dropped)")
    .argument("<file>", "a MOVA document")
    .option("--json", "print compact one-line JSON instead of indented JSON")
    .action(async (file: string, options: { json?: boolean }) =>
      setExit(await parseCommand(io, file, options)),
    );

  program
    .command("run")
    .description("run a protocol in-process (LLM from LLM_API_KEY/LLM_BASE_URL, offline without a key)")
    .argument("<file>", "a MOVA document")
    .option("-p, --protocol <name>", "the protocol to run (default: the document's only protocol)")
    .option(
      "--var <key=value>",
      "a run variable; the value is read as JSON when it is JSON (repeatable)",
      collect,
      [],
    )
    .option(
      "--session-data <json|@file>",
      "the run's session data, a JSON object or @file (read as {session.data.KEY})",
    )
    .option("--profile <json|@file>", "the run's user profile, a JSON object or @file (read as {profile.*})")
    .option("--answer <text>", "the reply to the next input step, in order (repeatable)", collect, [])
    .option("--json", "print the run result as JSON")
    .option("--step-by-step", "print each step as it finishes")
    .option(
      "--dry-run",
      "print what the run would call, calling nothing (exit 1 if a request cannot be built)",
    )
    .addHelpText("after", EXIT_HELP)
    .action(async (file: string, options) => setExit(await runCommand(io, file, options)));

  program
    .command("chat")
    .description("a conversation on standard input, one message a line (works through a pipe)")
    .argument("<file>", "a MOVA document")
    .option(
      "--var <key=value>",
      "a variable given to every protocol the chat starts (repeatable)",
      collect,
      [],
    )
    .option("--json", "print one JSON line per message: { message, intent, via, protocol, status, replies }")
    .action(async (file: string, options) => setExit(await chatCommand(io, file, options)));

  program
    .command("test")
    .description("exercise one step (run alone with the given variables) or one tool (called with them)")
    .argument("<file>", "a MOVA document")
    .option("--step <id>", "the step to run on its own")
    .option("--tool <id>", "the tool to call")
    .option("-p, --protocol <name>", "the protocol holding --step, when several have a step with that id")
    .option("--var <key=value>", "a variable (repeatable)", collect, [])
    .option("--json", "print the step record or the tool's status and body as JSON")
    .option("--dry-run", "print what would be called, calling nothing (exit 1 if a request cannot be built)")
    .addHelpText("after", EXIT_HELP)
    .action(async (file: string, options) => setExit(await testCommand(io, file, options)));

  const historyOptions = (command: Command) =>
    command
      .option("--history <file>", "a JSON Lines file of execution records (one record a line)")
      .option(
        "--document <name>",
        "only this document; without --history, read its history from the running `npm run dev`",
      )
      .option("--protocol <name>", "only this protocol")
      .option("--tenant <name>", "the local stack's tenant", "dev")
      .option(
        "--window <days>",
        "the last <days> days (default: the whole --history file; 30 days of the local stack)",
      )
      .option("--until <time>", "the end of the window, an ISO time (default: now)")
      .option("--doc <file>", "the MOVA document, for the document-aware recommendations (parallelize)");

  historyOptions(
    program
      .command("analyze")
      .description(
        "print statistics, patterns and recommendations per protocol, from a history file or the local stack",
      ),
  )
    .option("--json", "print the analysis report as JSON")
    .addHelpText(
      "after",
      `
Examples:
  mova analyze --history examples/history-sample.jsonl
  mova analyze --history runs.jsonl --protocol support_form --window 7 --json
  mova analyze --document shop            (reads the history of a running \`npm run dev\`)

Exit codes: 0 done; 2 usage (missing file, a line that is not an execution record, no local stack)`,
    )
    .action(async (options) => setExit(await analyzeCommand(io, options)));

  historyOptions(
    program
      .command("report")
      .description("write one self-contained HTML page with charts of the analysis report")
      .requiredOption("--html <file>", "where to write the page"),
  )
    .option("--title <text>", "the page's title")
    .addHelpText(
      "after",
      `
Example:
  mova report --html report.html --history examples/history-sample.jsonl`,
    )
    .action(async (options) => setExit(await reportCommand(io, options)));

  program
    .command("init")
    .description(`write a small working document (${STARTER_FILE}) to start from; never overwrites`)
    .argument("[dir]", "where to write it", ".")
    .action(async (dir: string) => setExit(await initCommand(io, dir)));

  return program;
}

export async function main(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (error instanceof CliError) {
      writeLine(io.stderr, styleFor(io).red(error.message));
      return error.exitCode;
    }
    writeLine(io.stderr, `mova: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    return EXIT.failed;
  }
}
