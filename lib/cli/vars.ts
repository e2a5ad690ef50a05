/** `--var key=value` options: a plain name, and a value read as JSON when it is JSON. */
import { readFile } from "node:fs/promises";
import { CliError } from "./io.ts";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Builds `value` from `key=value`: `42`, `true`, `null`, `{"a":1}` are JSON; anything else stays text. */
export function parseVariable(option: string): [string, unknown] {
  const eq = option.indexOf("=");
  if (eq < 0) throw new CliError("invalid_var", `--var ${option}: expected key=value`);
  const key = option.slice(0, eq);
  const raw = option.slice(eq + 1);
  if (!NAME.test(key)) {
    throw new CliError(
      "invalid_var",
      `--var ${option}: "${key}" is not a plain variable name (letters, digits and _, not starting with a digit)`,
    );
  }
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}

export function parseVariables(options: readonly string[] | undefined): Record<string, unknown> {
  const variables: Record<string, unknown> = {};
  for (const option of options ?? []) {
    const [key, value] = parseVariable(option);
    variables[key] = value;
  }
  return variables;
}

/** Commander's collector for a repeatable option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** An option's JSON object, given inline or as `@file`; anything else is a usage error. */
export async function readJsonObjectOption(option: string, text: string): Promise<Record<string, unknown>> {
  let source = text;
  if (text.startsWith("@")) {
    const file = text.slice(1);
    try {
      source = await readFile(file, "utf8");
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : "cannot read it";
      throw new CliError("invalid_option", `${option} ${text}: ${reason}`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (error) {
    throw new CliError("invalid_option", `${option}: not JSON (${(error as Error).message})`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new CliError("invalid_option", `${option}: expected a JSON object`);
  return value as Record<string, unknown>;
}
