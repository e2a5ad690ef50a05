/**
 * Crash recovery on the local stack: the runner runs as a process of its own
 * (test/support/runner-process.ts) and is killed with SIGKILL while a tool call is in flight
 * (a loopback tool that holds the request open); a new runner process goes on from the last
 * checkpoint. Every step finished before the crash ran once, the step in flight at most twice
 * with the same Idempotency-Key, and duplicate deliveries of the run's message change nothing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { GetQueueAttributesCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createSqsClient } from "../../lib/adapters/aws-clients.ts";
import { type ApiFixture, startApiFixture } from "../support/api-fixture.ts";
import { threeToolDocument } from "../support/three-tool-document.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
let api: ApiFixture;
const children: ChildProcess[] = [];

const crashDocument = (toolsUrl: string) => threeToolDocument("crash", toolsUrl);

beforeAll(async () => {
  api = await startApiFixture();
  expect((await api.call("PUT", "/documents/crash", { body: crashDocument(api.tools.url) })).status).toBe(
    201,
  );
  api.tools.route("POST", "/crash-a", { body: { n: 1 } });
  api.tools.route("POST", "/crash-c", { body: { n: 3 } });
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});
afterAll(async () => {
  await api?.close();
});

/** Starts a runner process on the fixture's stack; resolves once it polls. */
async function startRunnerProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/runner-process.ts"], {
    cwd: ROOT,
    // A short lease, so a killed runner's lease expires within the test.
    env: { ...process.env, ...api.env, RUN_LEASE_MS: "1000", RUNNER_MARGIN_MS: "0", LOG_LEVEL: "SILENT" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let output = "";
  child.stdout?.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: string) => {
      output += chunk;
      if (output.includes("ready")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`the runner process exited (${code}) before it was ready`)));
  });
  return child;
}

const calls = (path: string) => api.tools.requests.filter((r) => r.path === path);

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("a runner killed in the middle of a step", () => {
  it("a new runner completes the run from its last checkpoint: finished steps once, the step in flight twice with one Idempotency-Key", async () => {
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    await api.drainQueue(api.env.RUNS_QUEUE_URL!, 0);
    // The first call to b is held open until the runner is dead; later ones answer at once.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let bCalls = 0;
    api.tools.route("POST", "/crash-b", async () => {
      bCalls += 1;
      if (bCalls === 1) await held;
      return { body: { n: 2 } };
    });

    const first = await startRunnerProcess();
    const accepted = await api.call("POST", "/executions", {
      body: { document: "crash", protocol: "crash" },
      headers: { prefer: "respond-async" },
    });
    expect(accepted.status).toBe(202);
    const { executionId } = accepted.body;

    // Step one finished and was checkpointed; step two's tool call is in flight: kill the runner.
    await until("the call to b", () => (calls("/crash-b").length === 1 ? true : undefined));
    first.kill("SIGKILL");
    await once(first, "exit");
    release();

    const stranded = await api.deps.checkpoints.get("dev", executionId);
    expect(stranded?.state).toMatchObject({ status: "running", next: "two", stepCount: 1 });
    expect(stranded?.lease).toBeDefined();
    expect((await api.call("GET", `/executions/${executionId}`)).body.status).toBe("running");

    // The killed runner's message waits out the queue's visibility timeout (5400 s); what SQS
    // would then deliver is sent now, twice (a duplicate delivery), to a new runner process.
    const sqs = createSqsClient(api.config, { env: api.env });
    for (let n = 0; n < 2; n++) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: api.env.RUNS_QUEUE_URL!,
          MessageBody: JSON.stringify({ tenant: "dev", executionId }),
        }),
      );
    }
    const second = await startRunnerProcess();
    const done = await until("the run to finish", async () => {
      const shown = await api.call("GET", `/executions/${executionId}`);
      return shown.body.status === "running" ? undefined : shown;
    });
    expect(done.body).toMatchObject({ status: "completed", output: "123", analysis: "published" });
    expect(done.body.path).toEqual(["one", "two", "three", "end"]);
    // Step one's record, written by the killed runner's checkpoint only, is in history too.
    expect(done.body.steps.map((step: { id: string }) => step.id)).toEqual(["one", "two", "three", "end"]);

    // Both deliveries handled (only the killed runner's message, invisible for 5400 s, is
    // left), the second runner stopped: then count.
    await until("the deliveries to be handled", async () => {
      const attributes = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: api.env.RUNS_QUEUE_URL!,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        }),
      );
      const a = attributes.Attributes ?? {};
      return a.ApproximateNumberOfMessages === "0" && a.ApproximateNumberOfMessagesNotVisible === "1"
        ? true
        : undefined;
    });
    second.kill("SIGTERM");
    await once(second, "exit");
    expect(calls("/crash-a")).toHaveLength(1);
    expect(calls("/crash-c")).toHaveLength(1);
    const b = calls("/crash-b");
    expect(b).toHaveLength(2);
    const keyOf = (r: { headers: Record<string, unknown> }) => r.headers["idempotency-key"] as string;
    expect(keyOf(b[0]!)).toBeTruthy();
    expect(keyOf(b[1]!)).toBe(keyOf(b[0]!));
    const keys = new Set([keyOf(calls("/crash-a")[0]!), keyOf(b[0]!), keyOf(calls("/crash-c")[0]!)]);
    expect(keys.size).toBe(3);
    const events = (await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!)).filter((m) =>
      m.Body?.includes(executionId),
    );
    expect(events).toHaveLength(1);
  }, 120_000);
});
