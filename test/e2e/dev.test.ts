/**
 * `npm run dev` end to end: spawns the local stack as a user would, drives it over HTTP with
 * fetch (document, session, a multi-turn conversation, the execution in history, its
 * message on the queue), then stops it with SIGTERM and checks that it exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";
import { type HttpDouble, startHttpDouble } from "../support/http-double.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let child: ChildProcess | undefined;
let llm: FakeOpenAi;
let tools: HttpDouble;
let output = "";
let exitCode: Promise<number | null>;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`)),
      timeoutMs,
    );
    const check = () => {
      const match = output.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      } else setTimeout(check, 50);
    };
    check();
  });
}

beforeAll(async () => {
  llm = await startFakeOpenAi();
  tools = await startHttpDouble();
  tools.route("GET", "/stock/apple", { body: { available: 4 } });
  const port = await freePort();
  child = spawn(path.join(ROOT, "node_modules/.bin/tsx"), ["infra/local/dev.ts", "--memory"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      LLM_API_KEY: "sk-test",
      LLM_BASE_URL: llm.baseURL,
      LLM_MAX_RETRIES: "0",
      TOOL_ALLOW_HOSTS: `127.0.0.1:${tools.port}`,
      MOVA_DEV_API_KEY: "",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  exitCode = new Promise((resolve) => child?.once("exit", (code) => resolve(code)));
  await waitFor(/Press Ctrl\+C to stop/, 45_000);
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.allSettled([llm?.close(), tools?.close()]);
});

describe("npm run dev", () => {
  it("serves the API on the printed endpoint, records a conversation, analyses it through the queue, and stops on SIGTERM", async () => {
    const api = output.match(/API:\s+(http:\/\/\S+)/)?.[1];
    const key = output.match(/API key:\s+(\S+)/)?.[1];
    expect(api).toBeTruthy();
    expect(key).toMatch(/^dev_/);
    const call = async (method: string, route: string, body?: unknown) => {
      const response = await fetch(`${api}${route}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      // biome-ignore lint/suspicious/noExplicitAny: the test reads JSON responses field by field
      return { status: response.status, body: (await response.json()) as any };
    };

    expect((await fetch(`${api}/health`)).status).toBe(200);
    // The dashboard's address as printed, with the key in its fragment; its script bundled on request.
    expect(output).toContain(`Dashboard:   ${api}/dashboard#key=${key}`);
    const page = await fetch(`${api}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const script = await fetch(`${api}/dashboard/app.js`);
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(1000);
    const document = {
      version: "2.2",
      intents: [{ name: "order", patterns: ["order"], protocol: "order_flow" }],
      protocols: [
        {
          name: "order_flow",
          steps: [
            { id: "ask_item", action: "input", prompt: "Which item?", variable: "item" },
            { id: "stock", action: "tool_api", tool_api_id: "stock", output: "stock" },
            { id: "confirm", action: "prompt", prompt: "{item}: {stock.available} left" },
            { id: "end", action: "end", response_template: "Done: {item}" },
          ],
        },
      ],
      tools: [{ id: "stock", endpoint: `${tools.url}/stock/{item}`, method: "GET" }],
    };
    expect((await call("PUT", "/documents/e2e", document)).status).toBe(201);
    const session = await call("POST", "/sessions", { document: "e2e", userId: "someone" });
    expect(session.status).toBe(201);
    const sessionId = session.body.sessionId;

    const first = await call("POST", `/sessions/${sessionId}/messages`, { text: "I'd like to order" });
    expect(first.body).toMatchObject({ status: "waiting_input", intent: "order" });
    expect(first.body.replies).toContain("Which item?");
    const second = await call("POST", `/sessions/${sessionId}/messages`, { text: "apple" });
    expect(second.body).toMatchObject({
      status: "completed",
      output: "Done: apple",
      executionId: first.body.executionId,
    });
    expect(second.body.replies).toContain("reply: apple: 4 left");

    const record = await call("GET", `/executions/${second.body.executionId}`);
    expect(record.body).toMatchObject({ status: "completed", path: ["ask_item", "stock", "confirm", "end"] });

    // The dev workers consume the execution event from the queue and analyse it: the patterns
    // API counts the conversation's run within seconds.
    let statistics: { total?: number; successful?: number } | undefined;
    for (let i = 0; i < 40 && statistics?.total !== 1; i++) {
      const patterns = await call("GET", "/documents/e2e/protocols/order_flow/patterns");
      statistics = patterns.status === 200 ? patterns.body.statistics : undefined;
      if (statistics?.total !== 1) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(statistics).toMatchObject({ total: 1, successful: 1 });

    child!.kill("SIGTERM");
    const code = await Promise.race([
      exitCode,
      new Promise((resolve) => setTimeout(() => resolve("still running"), 15_000)),
    ]);
    expect(code).toBe(0);
  }, 60_000);
});
