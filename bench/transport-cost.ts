/**
 * CPU per HTTP call of each layer of the concurrency benchmark's client side, side by side in
 * one process against the benchmark's loopback servers answering at once: a bare `node:http`
 * request (the floor of any Node client here), the LLM port's `fetch` alone (built-in and
 * ./lib/adapters/http/node-fetch.ts), the `openai` SDK over each, the LLM port (`createOpenAiLlm`)
 * over each, and the tool port. Calls go in waves of 100 concurrent, as in the benchmark.
 * Usage: `node --import tsx bench/transport-cost.ts` (CALLS=2000 ROUNDS=3 by default).
 */
import http from "node:http";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { createHttpTools } from "../lib/adapters/http/tools.ts";
import { createOpenAiLlm } from "../lib/adapters/llm/openai.ts";
import { createNodeFetch } from "../lib/adapters/http/node-fetch.ts";
import { median } from "./lib/report.ts";
import { startChild } from "./support/child.ts";

const CALLS = Number(process.env.CALLS ?? 2000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WAVE = 100;

const servers = await startChild<{ openaiBaseURL: string; toolURL: string }>(
  fileURLToPath(new URL("./support/servers-child.ts", import.meta.url)),
  { BENCH_LLM_DELAY_MS: "0", BENCH_TOOL_DELAY_MS: "0" },
  [],
);
const { openaiBaseURL, toolURL } = servers.ready;
const completionURL = `${openaiBaseURL}/chat/completions`;
const requestBody = (index: number) =>
  JSON.stringify({ model: "m", messages: [{ role: "user", content: `hello ${index}` }] });

const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 4096, timeout: 4000 });
const bareHttp = (index: number) =>
  new Promise<void>((resolve, reject) => {
    const body = requestBody(index);
    const request = http.request(completionURL, {
      method: "POST",
      agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    });
    request.on("error", reject);
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        JSON.parse(Buffer.concat(chunks).toString("utf8"));
        resolve();
      });
    });
    request.end(body);
  });
const viaFetch = (fetch: typeof globalThis.fetch) => async (index: number) => {
  const response = await fetch(completionURL, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: requestBody(index),
  });
  await response.json();
};
const viaSdk = (fetch: typeof globalThis.fetch) => {
  const client = new OpenAI({ apiKey: "k", baseURL: openaiBaseURL, maxRetries: 0, fetch });
  return async (index: number) => {
    await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: `hello ${index}` }],
    });
  };
};
const viaPort = (fetch: typeof globalThis.fetch) => {
  const llm = createOpenAiLlm({ apiKey: "k", baseURL: openaiBaseURL, model: "m", maxRetries: 0, fetch });
  return async (index: number) => {
    await llm.complete({ messages: [{ role: "user", content: `hello ${index}` }] });
  };
};
const tools = createHttpTools({ allowHosts: ["127.0.0.1"] });
const viaToolPort = async (index: number) => {
  await tools.call({
    toolId: "lookup",
    method: "GET",
    url: `${toolURL}/lookup`,
    query: { q: `t ${index}` },
    headers: {},
  });
};

const builtin = globalThis.fetch;
const lean = createNodeFetch() as typeof globalThis.fetch;
const layers: Array<[string, (index: number) => Promise<void>]> = [
  ["bare node:http request + JSON.parse (floor)", bareHttp],
  ["fetch: built-in", viaFetch(builtin)],
  ["fetch: node-fetch.ts", viaFetch(lean)],
  ["openai SDK over built-in fetch", viaSdk(builtin)],
  ["openai SDK over node-fetch.ts", viaSdk(lean)],
  ["LLM port (createOpenAiLlm) over built-in fetch", viaPort(builtin)],
  ["LLM port (createOpenAiLlm) over node-fetch.ts (default)", viaPort(lean)],
  ["tool port (createHttpTools), GET", viaToolPort],
];

async function cpuPerCall(call: (index: number) => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  for (let done = 0; done < CALLS; done += WAVE)
    await Promise.all(Array.from({ length: WAVE }, (_, index) => call(done + index)));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / CALLS;
}

const figures = new Map<string, number[]>();
for (const [, call] of layers) await cpuPerCall(call);
for (let round = 0; round < ROUNDS; round += 1)
  for (const [name, call] of layers)
    figures.set(name, [...(figures.get(name) ?? []), await cpuPerCall(call)]);
console.log(
  `CPU µs per call (median of ${ROUNDS} rounds of ${CALLS} calls, waves of ${WAVE}; Node ${process.version})`,
);
for (const [name, values] of figures)
  console.log(
    `${median(values).toFixed(0).padStart(6)}  ${name}  [${values.map((v) => v.toFixed(0)).join(" ")}]`,
  );
await servers.close();
