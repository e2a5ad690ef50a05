/** Runs `node bin/mova.mjs …` the way a user would, and collects what it printed. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface MovaRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const HIDDEN = /^(LLM_|OPENAI_|OPENROUTER_|MOVA_SECRET_|TOOL_ALLOW_HOSTS$|NO_COLOR$|FORCE_COLOR$)/;

/** The test process's environment without LLM keys, secrets or tool allow-lists, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!HIDDEN.test(key)) env[key] = value;
  return { ...env, ...extra };
}

export function mova(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<MovaRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${REPO}bin/mova.mjs`, ...args], {
      cwd: options.cwd ?? REPO,
      env: childEnv(options.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `mova ${args.join(" ")} did not exit within ${options.timeoutMs ?? 20_000} ms\n${stdout}\n${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 20_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? "");
  });
}

/** The JSON a `--json` command printed on standard output. */
export function json<T = unknown>(run: MovaRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(
      `stdout is not one JSON value (exit ${run.code}):\n${run.stdout}\nstderr:\n${run.stderr}`,
    );
  }
}
