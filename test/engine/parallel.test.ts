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

describe("parallel", () => {
  it("runs its branches at the same time, each with its own record, then continues", async () => {
    const arrivals: Record<string, number> = {};
    servers.api.route("GET", "/weather", () => {
      arrivals.weather = Date.now();
      return { body: { temp: 21 }, delayMs: 200 };
    });
    servers.api.route("POST", "/news", () => {
      arrivals.news = Date.now();
      return { body: { headline: "calm" }, delayMs: 200 };
    });
    const reported: StepRecord[] = [];
    const started = Date.now();
    const result = await runProtocol({
      document: parallelDocument(),
      protocol: "p",
      variables: { city: "Lviv" },
      ports: servers.ports(),
      onStep: (record) => reported.push(record),
    });
    const elapsed = Date.now() - started;

    expect(result.status).toBe("completed");
    expect(result.output).toBe("21 / calm");
    // Both requests arrived before either answer could have been sent (each waits 200 ms).
    expect(Math.abs(arrivals.weather! - arrivals.news!)).toBeLessThan(150);
    // Run one after the other, the two 200 ms answers could not finish in under 400 ms.
    expect(elapsed).toBeLessThan(400);
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
    expect(result.steps[0]?.durationMs).toBeGreaterThanOrEqual(190);
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
    const arrivals: Record<string, number> = {};
    servers.openai.setDelay(150);
    servers.openai.answerWith((request) => {
      arrivals.llm = Date.now();
      return `reply: ${request.messages.at(-1)?.content}`;
    });
    servers.api.route("GET", "/weather", () => {
      arrivals.tool = Date.now();
      return { body: { temp: 30 }, delayMs: 150 };
    });
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
      // The second call started before the first could have been answered.
      expect(Math.abs(arrivals.llm! - arrivals.tool!)).toBeLessThan(150);
      expect(result.path).toEqual(["fan", "done"]);
      expect(servers.openai.completions()).toHaveLength(1);
    } finally {
      servers.openai.setDelay(0);
      servers.openai.answerWith((request) => `reply: ${request.messages.at(-1)?.content}`);
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
