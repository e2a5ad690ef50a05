/**
 * 4. Request path: POST /executions on the local stack (dynalite and fauxqs in memory, the real
 * API handler behind the local gateway) with an instant LLM (the fake OpenAI server with no
 * delay), driven by autocannon at a fixed concurrency for a fixed time. The same stack serves
 * two gateways side by side: one publishing each execution to SQS (the deployed wiring, the
 * publish overlapping the history write) and one whose publisher does nothing; rounds
 * alternate between them and the figures are medians over the rounds.
 */
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import autocannon, { type Result } from "autocannon";
import { fileURLToPath } from "node:url";
import { median, round } from "./lib/report.ts";
import type { Benchmark, BenchContext } from "./lib/types.ts";
import { startChild } from "./support/child.ts";

export interface RequestPathResult {
  p50Ms: number;
  p99Ms: number;
  p50MsNoPublish: number;
  p99MsNoPublish: number;
  requestsPerSecond: number;
}

interface StackReady {
  env: Record<string, string>;
  sessionBackend: string;
  warnings: string[];
}

interface ApiReady {
  withPublishURL: string;
  withoutPublishURL: string;
  apiKey: string;
}

const CONNECTIONS = 10;

async function drive(
  url: string,
  apiKey: string,
  seconds: number,
  connections = CONNECTIONS,
): Promise<Result> {
  const result = await autocannon({
    url: `${url}/executions`,
    method: "POST",
    connections,
    duration: seconds,
    timeout: 30,
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ document: "bench", protocol: "answer", variables: { question: "what is MOVA?" } }),
  });
  if (result.non2xx > 0 || result.errors > 0 || result["2xx"] === 0)
    throw new Error(
      `POST /executions: ${result["2xx"]} answered 2xx, ${result.non2xx} other statuses, ${result.errors} errors`,
    );
  return result;
}

async function queuedMessages(stack: StackReady): Promise<number> {
  const sqs = new SQSClient({
    region: "us-east-1",
    endpoint: stack.env.AWS_ENDPOINT_URL_SQS,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  try {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: stack.env.ANALYSIS_QUEUE_URL,
        AttributeNames: ["ApproximateNumberOfMessages"],
      }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
  } finally {
    sqs.destroy();
  }
}

export const requestPathBenchmark: Benchmark<RequestPathResult> = {
  name: "requestPath",
  title: `Request path: POST /executions on the local stack, instant LLM, autocannon with ${CONNECTIONS} connections`,
  async run(context: BenchContext) {
    const llm = await startChild<{ openaiBaseURL: string }>(
      fileURLToPath(new URL("./support/servers-child.ts", import.meta.url)),
      { BENCH_LLM_DELAY_MS: "0", BENCH_TOOL_DELAY_MS: "0" },
    );
    try {
      const stack = await startChild<StackReady>(
        fileURLToPath(new URL("./support/stack-child.ts", import.meta.url)),
      );
      try {
        const api = await startChild<ApiReady>(
          fileURLToPath(new URL("./support/api-child.ts", import.meta.url)),
          {
            BENCH_LLM_BASE_URL: llm.ready.openaiBaseURL,
            BENCH_STACK_ENV: JSON.stringify(stack.ready.env),
            BENCH_SESSION_BACKEND: stack.ready.sessionBackend,
          },
        );
        try {
          const { ready } = api;
          const seconds = context.quick ? 3 : 8;
          const rounds = context.quick ? 1 : 3;
          await drive(ready.withPublishURL, ready.apiKey, 2);
          await drive(ready.withoutPublishURL, ready.apiKey, 2);
          const queuedBefore = await queuedMessages(stack.ready);
          const on: Result[] = [];
          const off: Result[] = [];
          let publishedRequests = 0;
          for (let index = 0; index < rounds; index += 1) {
            const withPublish = await drive(ready.withPublishURL, ready.apiKey, seconds);
            publishedRequests += withPublish["2xx"];
            on.push(withPublish);
            off.push(await drive(ready.withoutPublishURL, ready.apiKey, seconds));
            context.log(
              `requestPath round ${index + 1}: publish p50 ${withPublish.latency.p50} p99 ${withPublish.latency.p99} ms ${round(withPublish.requests.average, 0)} req/s; ` +
                `no publish p50 ${off.at(-1)?.latency.p50} p99 ${off.at(-1)?.latency.p99} ms ${round(off.at(-1)?.requests.average ?? 0, 0)} req/s`,
            );
          }
          const queuedAfter = await queuedMessages(stack.ready);
          // Nothing consumes the queue here: every answered request of the 'on' rounds must be on it.
          if (queuedAfter - queuedBefore < 0.95 * publishedRequests)
            throw new Error(
              `publishing is not happening: the queue grew by ${queuedAfter - queuedBefore} for ${publishedRequests} requests`,
            );
          // One connection as well: the latency of a request that waits for no other, so the
          // price of publishing is seen apart from the queueing of a saturated machine.
          const singleOn = await drive(ready.withPublishURL, ready.apiKey, seconds, 1);
          const singleOff = await drive(ready.withoutPublishURL, ready.apiKey, seconds, 1);
          context.log(
            `requestPath 1 connection: publish p50 ${singleOn.latency.p50} p99 ${singleOn.latency.p99} ms; no publish p50 ${singleOff.latency.p50} p99 ${singleOff.latency.p99} ms`,
          );
          const result: RequestPathResult = {
            p50Ms: round(median(on.map((r) => r.latency.p50)), 2),
            p99Ms: round(median(on.map((r) => r.latency.p99)), 2),
            p50MsNoPublish: round(median(off.map((r) => r.latency.p50)), 2),
            p99MsNoPublish: round(median(off.map((r) => r.latency.p99)), 2),
            requestsPerSecond: round(median(on.map((r) => r.requests.average)), 1),
          };
          const noPublishRps = round(median(off.map((r) => r.requests.average)), 1);
          return {
            result,
            table: {
              headers: ["publishing", "p50 ms", "p99 ms", "requests/s"],
              rows: [
                [
                  "on (SQS, overlapping the history write)",
                  result.p50Ms,
                  result.p99Ms,
                  result.requestsPerSecond,
                ],
                ["off (no-op publisher)", result.p50MsNoPublish, result.p99MsNoPublish, noPublishRps],
                [
                  "price of publishing",
                  round(result.p50Ms - result.p50MsNoPublish, 2),
                  round(result.p99Ms - result.p99MsNoPublish, 2),
                  null,
                ],
                [
                  "1 connection, on",
                  singleOn.latency.p50,
                  singleOn.latency.p99,
                  round(singleOn.requests.average, 1),
                ],
                [
                  "1 connection, off",
                  singleOff.latency.p50,
                  singleOff.latency.p99,
                  round(singleOff.requests.average, 1),
                ],
              ],
            },
            notes: [
              `${rounds} round(s) of ${seconds} s per mode at ${CONNECTIONS} connections, alternating, after 2 s of warm-up each; medians over rounds of autocannon's per-run p50/p99 (whole milliseconds); then one ${seconds} s run per mode at 1 connection (not in results.json)`,
              "four processes: the local stack (dynalite in memory, fauxqs, sessions), the API (both gateways over the real handler), the fake OpenAI server (no delay) and autocannon (this one); the stack is remote from the API as AWS is from a function",
              "publishing off = the same deps with a publisher that does nothing, built for this comparison only: the API deps have no switch to disable publishing",
              `the analysis queue grew by ${queuedAfter - queuedBefore} messages over the timed 'on' rounds, which answered ${publishedRequests} requests (fauxqs' approximate count; warm-up messages may still be arriving)`,
              `session backend of the stack: ${stack.ready.sessionBackend} (POST /executions without a session does not touch it)`,
              `1 connection: publishing on p50 ${singleOn.latency.p50} ms, p99 ${singleOn.latency.p99} ms, ${round(singleOn.requests.average, 1)} req/s; off p50 ${singleOff.latency.p50} ms, p99 ${singleOff.latency.p99} ms, ${round(singleOff.requests.average, 1)} req/s`,
            ],
          };
        } finally {
          await api.close();
        }
      } finally {
        await stack.close();
      }
    } finally {
      await llm.close();
    }
  },
};
