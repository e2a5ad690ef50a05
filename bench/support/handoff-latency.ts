/**
 * The time from a run's hand-off to the runner resuming it, on the local stack. A one-step
 * protocol (a `tool_api` call to a loopback HTTP server, then `end`) is started with
 * `Prefer: respond-async` through the real API handler behind the local gateway: the API
 * creates the run and hands it off (lib/services/run-handoff.ts: the sweep's schedule, then the
 * runs queue on fauxqs) and answers 202 without running a step. The local stack's own runner
 * worker (infra/local/runner-worker.ts: the SQS poller, long-polling the runs queue, into the
 * real runner handler) picks it up; the runner's first step is its tool call, so the instant
 * the loopback server receives that request is the instant the runner's leg started the step.
 * Hand-offs run one after another, each once the previous run has finished, so the poller is
 * back in its long poll, as an idle runner is.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Logger } from "@aws-lambda-powertools/logger";
import { startGateway } from "../../infra/local/gateway.ts";
import { runnerPollerWorker } from "../../infra/local/runner-worker.ts";
import { loadConfig } from "../../lib/config.ts";
import { createApiHandler } from "../../lib/http/handler.ts";
import { buildApiDeps } from "../../lib/wiring/api.ts";

/** The long-poll wait of the local runner worker (runner-worker.ts), stated with the figure. */
export const RUNNER_POLL_WAIT_SECONDS = 5;

export interface HandOffSample {
  /** From sending POST /executions (Prefer: respond-async) to the runner's first tool call. */
  fromRequestMs: number;
  /** From the 202 (the hand-off is done: the message is on the queue) to the runner's first tool call. */
  fromAcceptedMs: number;
}

export async function measureHandOffs(options: {
  stackEnv: Record<string, string>;
  sessionBackend: "redis" | "memory";
  count: number;
}): Promise<HandOffSample[]> {
  let arrived: ((at: number) => void) | undefined;
  const tool = createServer((request, response) => {
    const at = performance.now();
    request.resume();
    request.on("end", () => {
      arrived?.(at);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ n: 1 }));
    });
  });
  await new Promise<void>((resolve) => tool.listen(0, "127.0.0.1", resolve));
  const toolPort = (tool.address() as AddressInfo).port;
  const apiKey = "bench_handoff_key";
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...options.stackEnv,
    MOVA_DEV_API_KEY: apiKey,
    TOOL_ALLOW_HOSTS: `127.0.0.1:${toolPort}`,
    LOG_LEVEL: "ERROR",
  };
  const config = loadConfig(env);
  const logger = new Logger({ serviceName: "mova-bench-handoff", logLevel: "ERROR" });
  const deps = buildApiDeps(config, { env, sessionBackend: options.sessionBackend, logger });
  const gateway = await startGateway({ handler: createApiHandler(deps), port: 0, host: "127.0.0.1" });
  const runner = await runnerPollerWorker.start({ env, config, logger });
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", ...headers },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  try {
    const stored = await call("PUT", "/documents/bench-handoff", {
      version: "2.2",
      tools: [{ id: "ping", endpoint: `http://127.0.0.1:${toolPort}/ping`, method: "POST" }],
      protocols: [
        {
          name: "resume",
          steps: [
            { id: "ping", action: "tool_api", tool_api_id: "ping", output: "ping" },
            { id: "done", action: "end", response_template: "resumed {ping.n}" },
          ],
        },
      ],
    });
    if (!stored.ok) throw new Error(`PUT /documents answered ${stored.status}: ${await stored.text()}`);
    const samples: HandOffSample[] = [];
    for (let index = 0; index < options.count; index += 1) {
      const toolCalled = new Promise<number>((resolve) => {
        arrived = resolve;
      });
      const sent = performance.now();
      const response = await call(
        "POST",
        "/executions",
        { document: "bench-handoff", protocol: "resume" },
        { prefer: "respond-async" },
      );
      const accepted = performance.now();
      const body = (await response.json()) as { executionId?: string; status?: string };
      if (response.status !== 202 || !body.executionId)
        throw new Error(`POST /executions answered ${response.status}: ${JSON.stringify(body)}`);
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`the runner did not resume ${body.executionId} in 30 s`)),
          30_000,
        ).unref(),
      );
      const at = await Promise.race([toolCalled, timeout]);
      samples.push({ fromRequestMs: at - sent, fromAcceptedMs: at - accepted });
      // The next hand-off starts once this run is finished and the poller is back in its long poll.
      for (let poll = 0; ; poll += 1) {
        const shown = (await (await call("GET", `/executions/${body.executionId}`)).json()) as {
          status?: string;
          output?: string;
        };
        if (shown.status === "completed" && shown.output === "resumed 1") break;
        if (shown.status !== "running" || poll > 300)
          throw new Error(`run ${body.executionId} ended ${shown.status}: ${JSON.stringify(shown)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return samples;
  } finally {
    await runner.stop();
    await gateway.close();
    await new Promise((resolve) => tool.close(resolve));
  }
}
