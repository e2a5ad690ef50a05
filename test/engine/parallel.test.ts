import { describe, expect, it } from "vitest";
import { runProtocol } from "../../lib/engine/engine.ts";
import type { StepRecord } from "../../lib/core/run.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

function parallelDocument(branchStatus = 200) {
  return documentOf({
    tools: [
      { id: "weather", endpoint: `${servers.api.url}/weather`, parameters: { city: "{city}" } },
      { id: "news", endpoint: `${servers.api.url}/news`, method: "POST", parameters: { topic: "{city}" } },
      { id: "broken", endpoint: `${servers.api.url}/broken` },
    ],
    protocols: [
      {
        name: "p",
        steps: [
          {
            id: "both",
            action: "parallel",
            steps: ["get_weather", branchStatus === 200 ? "get_news" : "get_broken"],
            next_step: "sum",
          },
          { id: "get_weather", action: "tool_api", tool_api_id: "weather", output: "weather" },
          { id: "get_news", action: "tool_api", tool_api_id: "news", output: "news" },
          { id: "get_broken", action: "tool_api", tool_api_id: "broken" },
          { id: "sum", action: "end", response_template: "{weather.temp} / {news.headline}" },
        ],
      },
    ],
  });
}

/**
 * A meeting point for `parties` requests: `arrive()` answers true once all of them arrived,
 * or false for every arrival once ARRIVAL_WAIT_MS passed since the first (they did not overlap).
 */
const ARRIVAL_WAIT_MS = 3_000;
function barrier(parties: number): { arrive(): Promise<boolean> } {
  let arrived = 0;
  let settled: boolean | undefined;
  const waiting: Array<(met: boolean) => void> = [];
  const settle = (met: boolean) => {
    settled ??= met;
    for (const resolve of waiting.splice(0)) resolve(settled);
  };
  return {
    arrive() {
      if (settled !== undefined) return Promise.resolve(settled);
      arrived += 1;
      if (arrived === 1) setTimeout(() => settle(false), ARRIVAL_WAIT_MS).unref();
      const met = new Promise<boolean>((resolve) => waiting.push(resolve));
      if (arrived === parties) settle(true);
      return met;
    },
  };
}

describe("parallel", () => {
  it("runs its branches at the same time, each with its own record, then continues", async () => {
    // Each answer is held until both requests arrived: branches run one after the other would
    // leave the first waiting for a request that never comes, and fail with the 503 below.
    const bothArrived = barrier(2);
    servers.api.route("GET", "/weather", async () =>
      (await bothArrived.arrive()) ? { body: { temp: 21 } } : { status: 503, body: "not concurrent" },
    );
    servers.api.route("POST", "/news", async () =>
      (await bothArrived.arrive()) ? { body: { headline: "calm" } } : { status: 503, body: "not concurrent" },
    );
    const reported: StepRecord[] = [];
    const result = await runProtocol({
      document: parallelDocument(),
      protocol: "p",
      variables: { city: "Lviv" },
      ports: servers.ports(),
      onStep: (record) => reported.push(record),
    });

    expect(result.status).toBe("completed");
    expect(result.output).toBe("21 / calm");
    expect(result.path).toEqual(["both", "sum"]);
    expect(result.steps.map((s) => [s.id, s.status])).toEqual([
      ["get_weather", "succeeded"],
      ["get_news", "succeeded"],
      ["both", "succeeded"],
      ["sum", "succeeded"],
    ]);
    const parallel = result.steps.find((s) => s.id === "both")!;
    expect(parallel.branches).toEqual(["get_weather", "get_news"]);
    expect(parallel.output).toEqual({ get_weather: { temp: 21 }, get_news: { headline: "calm" } });
    expect(reported.map((r) => r.id).sort()).toEqual(["both", "get_news", "get_weather", "sum"]);
    expect(servers.api.requests.find((r) => r.path === "/news")?.json).toEqual({ topic: "Lviv" });
  });

  it("fails the parallel step and the run when a branch fails", async () => {
    servers.api.route("GET", "/weather", { body: { temp: 5 }, delayMs: 50 });
    servers.api.route("GET", "/broken", { status: 404, body: { error: "gone" } });
    const result = await runProtocol({
      document: parallelDocument(404),
      protocol: "p",
      ports: servers.ports(),
    });
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("tool_http_status");
    const byId = Object.fromEntries(result.steps.map((s) => [s.id, s]));
    expect(byId.get_weather?.status).toBe("succeeded");
    expect(byId.get_broken).toMatchObject({ status: "failed", httpStatus: 404 });
    expect(byId.both?.status).toBe("failed");
    expect(result.path).toEqual(["both"]);
  });

  it("runs a prompt and a tool call side by side", async () => {
    // The model's answer and the tool's are each held until both requests arrived.
    const bothArrived = barrier(2);
    servers.openai.holdUntil(() => bothArrived.arrive());
    servers.api.route("GET", "/weather", async () =>
      (await bothArrived.arrive()) ? { body: { temp: 30 } } : { status: 503, body: "not concurrent" },
    );
    try {
      const document = documentOf({
        tools: [{ id: "weather", endpoint: `${servers.api.url}/weather` }],
        protocols: [
          {
            name: "p",
            steps: [
              { id: "fan", action: "parallel", steps: ["greet", "measure"], next_step: "done" },
              { id: "greet", action: "prompt", prompt: "hello" },
              { id: "measure", action: "tool_api", tool_api_id: "weather", output: "w" },
              { id: "done", action: "end", response_template: "{prompt_response_greet} at {w.temp}" },
            ],
          },
        ],
      });
      const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
      expect(result.output).toBe("reply: hello at 30");
      expect(result.path).toEqual(["fan", "done"]);
      expect(servers.openai.completions()).toHaveLength(1);
    } finally {
      servers.openai.holdUntil(undefined);
    }
  });

  it("refuses a branch that is not a prompt or tool_api step", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "p",
          steps: [
            { id: "fan", action: "parallel", steps: ["stop"] },
            { id: "stop", action: "end" },
          ],
        },
      ],
    });
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("invalid_parallel_branch");
  });
});
