/**
 * `mova chat <file>`: a conversation on standard input, one message a line. A message
 * resumes the run waiting for input if there is one; otherwise its intent is recognised,
 * and the intent's protocol starts (or its response template is the reply).
 */
import { createInterface } from "node:readline";
import { resumeRun, runProtocol } from "../../engine/engine.ts";
import { type ConversationTurn, rememberTurns } from "../../core/conversation.ts";
import type { RunResult, SuspendedRun } from "../../core/run.ts";
import { recognizeIntent } from "../../engine/intent-recognition.ts";
import { renderTemplate } from "../../mova/placeholders.ts";
import { summaryLine } from "../format.ts";
import { type CliIo, EXIT, styleFor, writeLine } from "../io.ts";
import { issueLine, loadRunnableDocument } from "../load.ts";
import { offlineNotice, portsFrom } from "../ports.ts";
import { parseVariables } from "../vars.ts";

/** What one message led to; `--json` prints one of these a line. */
export interface ChatTurn {
  message: string;
  intent: string | null;
  /** How the intent was recognised, for a message that did not answer a waiting run. */
  via?: "pattern" | "llm" | "none";
  protocol?: string;
  status?: RunResult["status"];
  replies: string[];
  error?: { code: string; message: string };
}

export async function chatCommand(
  io: CliIo,
  file: string,
  options: { json?: boolean; var?: string[] },
): Promise<number> {
  const style = styleFor(io);
  const variables = parseVariables(options.var);
  const { document, warnings } = await loadRunnableDocument(file);
  for (const issue of warnings) writeLine(io.stderr, style.yellow(issueLine(file, "warning", issue)));
  const ports = portsFrom(io);
  const sayOffline = offlineNotice(io);
  const interactive = Boolean(io.stdin.isTTY) && io.isTTY && !options.json;
  const lines = createInterface({ input: io.stdin, terminal: false, crlfDelay: Number.POSITIVE_INFINITY });

  let suspended: SuspendedRun | undefined;
  const prompt = () => {
    if (interactive) io.stdout.write(style.dim("you> "));
  };

  const finishTurn = (turn: ChatTurn, result: RunResult) => {
    // Each leg (the start, then each resume) reports only its own replies.
    turn.replies.push(...result.replies);
    turn.status = result.status;
    if (result.error) turn.error = result.error;
    if (result.offline) sayOffline();
    if (result.status === "waiting_input" && result.suspended) {
      suspended = result.suspended;
    } else {
      suspended = undefined;
      if (result.status !== "completed" && !options.json) writeLine(io.stderr, summaryLine(result, style));
    }
  };

  // The conversation so far, as a session remembers it, for prompt steps with memory.
  let conversation: ConversationTurn[] = [];

  if (interactive) writeLine(io.stdout, style.dim(`chatting with ${file}; end with Ctrl-D`));
  prompt();
  for await (const raw of lines) {
    const message = raw.trim();
    if (!message) {
      prompt();
      continue;
    }
    const turn: ChatTurn = { message, intent: null, replies: [] };
    if (suspended) {
      turn.protocol = suspended.protocol;
      const result = await resumeRun({ document, ports, suspended, reply: message, conversation });
      finishTurn(turn, result);
    } else {
      const recognition = await recognizeIntent(document, message, ports.llm);
      const intent = recognition.intent;
      turn.intent = intent?.name ?? null;
      turn.via = recognition.via;
      if (intent?.protocol) {
        turn.protocol = intent.protocol;
        const result = await runProtocol({
          document,
          protocol: intent.protocol,
          variables: { ...variables, user_input: message },
          intent: intent.name,
          ports,
          conversation,
        });
        finishTurn(turn, result);
      } else if (intent?.response_template !== undefined) {
        const context: Record<string, unknown> = { user_input: message, intent: intent.name };
        turn.replies.push(renderTemplate(intent.response_template, (path) => context[path]).text);
      } else if (!intent) {
        turn.error = { code: "no_intent", message: "no intent recognised" };
      }
    }
    conversation = rememberTurns(conversation, [
      { role: "user", content: message },
      ...turn.replies.map((reply) => ({ role: "assistant" as const, content: reply })),
    ]);
    if (options.json) writeLine(io.stdout, JSON.stringify(turn));
    else {
      for (const reply of turn.replies) writeLine(io.stdout, reply);
      if (turn.error?.code === "no_intent") writeLine(io.stdout, style.dim("(no intent recognised)"));
    }
    prompt();
  }
  if (interactive) writeLine(io.stdout);
  if (suspended)
    writeLine(io.stderr, style.dim(`conversation ended while ${suspended.protocol} waited for input`));
  return EXIT.ok;
}
