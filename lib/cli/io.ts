import { MovaError } from "../errors.ts";

/**
 * What a command talks through: the streams and the environment. `main` receives them so
 * that the CLI runs the same in a process and inside a test.
 */
export interface CliIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Whether standard output is a terminal: colours and interactive touches only then. */
  isTTY: boolean;
}

/** A failure that ends the command with this exit code and message (on standard error). */
export class CliError extends MovaError {
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode = 2) {
    super(code, message);
    this.exitCode = exitCode;
  }
}

export const EXIT = { ok: 0, failed: 1, usage: 2, waiting: 3 } as const;

export interface Style {
  red(text: string): string;
  yellow(text: string): string;
  green(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const ansi = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;
const plain = (text: string) => text;

/** Colours only on a terminal, and never when NO_COLOR is set to anything (no-color.org). */
export function styleFor(io: CliIo): Style {
  const colour = io.isTTY && !io.env.NO_COLOR;
  if (!colour) return { red: plain, yellow: plain, green: plain, dim: plain, bold: plain };
  return {
    red: ansi(31, 39),
    yellow: ansi(33, 39),
    green: ansi(32, 39),
    dim: ansi(2, 22),
    bold: ansi(1, 22),
  };
}

export function writeLine(stream: { write(chunk: string): unknown }, text = ""): void {
  stream.write(`${text}\n`);
}
