/** `mova init [dir]`: writes a small working document (mova.json) to start from. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CliError, type CliIo, EXIT, writeLine } from "../io.ts";

export const STARTER_FILE = "mova.json";

/** Validates and runs with no LLM and no network: the prompt is answered offline. */
const STARTER_DOCUMENT = {
  version: "2.2",
  intents: [
    {
      name: "greeting",
      patterns: ["hello", "hi", "привіт"],
      priority: 1,
      intent_type: "greeting",
      protocol: "greet",
    },
    {
      name: "help",
      patterns: ["help", "допомога"],
      intent_type: "question",
      response_template: "Say hello to start the greeting protocol.",
    },
  ],
  protocols: [
    {
      name: "greet",
      description: "Asks for a name and greets the user.",
      steps: [
        { id: "ask_name", action: "input", prompt: "What is your name?", variable: "name" },
        {
          id: "check_name",
          action: "condition",
          conditions: [{ variable: "name", operator: "matches", value: "\\S" }],
          else_step: "ask_name",
        },
        {
          id: "compose",
          action: "prompt",
          prompt: "Write a one-line friendly greeting for {name}.",
          output: "greeting",
        },
        { id: "done", action: "end", response_template: "{greeting}" },
      ],
    },
  ],
  tools: [],
};

export async function initCommand(io: CliIo, dir: string | undefined): Promise<number> {
  const target = dir ?? ".";
  const file = join(target, STARTER_FILE);
  await mkdir(target, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new CliError(
      "init_failed",
      `${target}: cannot create the directory (${error.code ?? error.message})`,
    );
  });
  try {
    await writeFile(file, `${JSON.stringify(STARTER_DOCUMENT, null, 2)}\n`, { flag: "wx" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new CliError("file_exists", `${file}: already exists; not overwriting it`);
    throw new CliError("init_failed", `${file}: cannot write (${code ?? (error as Error).message})`);
  }
  writeLine(io.stdout, `wrote ${file}`);
  writeLine(io.stdout, "next:");
  writeLine(io.stdout, `  mova validate ${file}`);
  writeLine(io.stdout, `  mova run ${file} --protocol greet --answer Ada`);
  writeLine(io.stdout, `  echo -e "hello\\nAda" | mova chat ${file}`);
  return EXIT.ok;
}
