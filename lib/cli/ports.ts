/** The engine's ports for a CLI run, from the environment the CLI was given. */
import { createToolsFromConfig } from "../adapters/http/tools.ts";
import { createLlm } from "../adapters/llm/create-llm.ts";
import { type Config, envSecrets, loadConfig } from "../config.ts";
import { isMovaError } from "../errors.ts";
import type { EnginePorts } from "../ports.ts";
import { CliError, type CliIo } from "./io.ts";

function configFrom(io: CliIo): Config {
  try {
    return loadConfig(io.env);
  } catch (error) {
    if (isMovaError(error, "invalid_config")) throw new CliError("invalid_config", error.message);
    throw error;
  }
}

export function portsFrom(io: CliIo): EnginePorts {
  const config = configFrom(io);
  return {
    llm: createLlm(config),
    tools: createToolsFromConfig(config),
    secrets: envSecrets(io.env),
  };
}

/** Says once, on standard error, that prompts were answered offline. */
export function offlineNotice(io: CliIo): () => void {
  let said = false;
  return () => {
    if (said) return;
    said = true;
    io.stderr.write(
      "note: no LLM configured (set LLM_API_KEY, OPENAI_API_KEY or OPENROUTER_API_KEY); prompts were answered offline with the rendered prompt\n",
    );
  };
}
