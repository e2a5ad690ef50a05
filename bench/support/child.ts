/** Starts a TypeScript file of the benchmark in a fresh Node process (through tsx) and talks to it over IPC. */
import { type ChildProcess, fork } from "node:child_process";

export interface Child<Ready> {
  process: ChildProcess;
  ready: Ready;
  /** Asks the child to close and waits for it to exit. */
  close(): Promise<void>;
}

export function forkTs(
  file: string,
  env: Record<string, string> = {},
  execArgv: string[] = [],
): ChildProcess {
  return fork(file, [], {
    execArgv: ["--import", "tsx", ...execArgv],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

/** BENCH_PROFILE_DIR=<dir> profiles every child with `--cpu-prof` (the parent is profiled with `node --cpu-prof --import tsx bench/run.ts`). */
function profileArgs(): string[] {
  const dir = process.env.BENCH_PROFILE_DIR;
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

/** Forks the file and waits for its first IPC message. */
export function startChild<Ready>(
  file: string,
  env: Record<string, string> = {},
  execArgv: string[] = profileArgs(),
): Promise<Child<Ready>> {
  const child = forkTs(file, env, execArgv);
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`${file} exited with code ${code} before it was ready`));
    child.once("exit", onExit);
    child.once("error", reject);
    child.once("message", (ready) => {
      child.off("exit", onExit);
      resolve({
        process: child,
        ready: ready as Ready,
        close: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) {
              done();
              return;
            }
            child.once("exit", () => done());
            child.send("close");
          }),
      });
    });
  });
}

/** Runs the file to completion and returns the one IPC message it sends with its result. */
export function runChild<Result>(
  file: string,
  env: Record<string, string> = {},
  execArgv: string[] = profileArgs(),
): Promise<Result> {
  const child = forkTs(file, env, execArgv);
  return new Promise((resolve, reject) => {
    let result: { value: Result } | undefined;
    child.on("message", (message) => {
      result = { value: message as Result };
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0 && result) resolve(result.value);
      else reject(new Error(`${file} exited with code ${code}${result ? "" : " without a result"}`));
    });
  });
}
