/**
 * A private `redis-server` for one test: on a port of its own, keeping nothing (no RDB, no
 * AOF), killable with SIGKILL and restartable on the same port (empty again).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { findOnPath, freePort, redisAnswers } from "../../infra/local/stack.ts";

/** The `redis-server` on the PATH, or undefined. */
export function findRedisServer(): string | undefined {
  return findOnPath("redis-server");
}

export { freePort };

export interface RedisProcess {
  port: number;
  url: string;
  child: ChildProcess;
  /** SIGKILL, then wait for the exit (bounded). */
  kill(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts redis-server on `port` and waits (up to `timeoutMs`) until it answers PING. */
export async function startRedisProcess(
  binary: string,
  port: number,
  timeoutMs = 10_000,
): Promise<RedisProcess> {
  const child = spawn(
    binary,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2_000);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  const url = `redis://127.0.0.1:${port}`;
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null && child.signalCode === null) {
      throw new Error(`redis-server (pid ${child.pid}) did not exit after SIGKILL`);
    }
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await redisAnswers(url, 200)) return { port, url, child, kill };
    await sleep(50);
  }
  await kill();
  throw new Error(`redis-server on port ${port} did not start (exit code ${child.exitCode}): ${stderr}`);
}

/** Starts redis-server on a free port; a lost race for the port (taken meanwhile) is tried again, three times in all. */
export async function startRedisOnFreePort(binary: string): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisProcess(binary, await freePort());
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}
