import { describe, expect, it } from "vitest";
import { dryRun } from "../../lib/engine/dry-run.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

function document() {
  return documentOf({
    instructions: [{ id: "brief", title: "Brief", content: "Be brief." }],
    tools: [
      {
        id: "weather",
        endpoint: `${servers.api.url}/weather`,
        parameters: { q: "{city}", key: "{secrets.KEY}" },
        authentication: { type: "bearer", token: "{secrets.TOKEN}" },
      },
      { id: "log", endpoint: `${servers.api.url}/log`, method: "POST", parameters: { text: "{summary}" } },
    ],
    protocols: [
      {
        name: "p",
        steps: [
          { id: "fetch", action: "tool_api", tool_api_id: "weather", output: "w" },
          {
            id: "hot",
            action: "condition",
            conditions: [{ variable: "w.temp", operator: "greater_than", value: 25 }],
            else_step: "cold",
          },
          {
            id: "advise",
            action: "prompt",
            prompt: "Hot in {city}: {w.temp}",
            instructions: ["brief"],
            output: "summary",
          },
          { id: "both", action: "parallel", steps: ["record", "advise"], next_step: "mode" },
          { id: "record", action: "tool_api", tool_api_id: "log" },
          {
            id: "mode",
            action: "condition",
            conditions: [{ variable: "mode", operator: "equals", value: "quiet" }],
            else_step: "ask",
          },
          { id: "bye", action: "end", response_template: "Bye from {city}" },
          { id: "ask", action: "input", prompt: "Anything else about {city}?", variable: "more" },
          { id: "cold", action: "end" },
        ],
      },
      {
        name: "loop",
        steps: [
          { id: "a", action: "prompt", prompt: "again" },
          {
            id: "b",
            action: "condition",
            conditions: [{ variable: "prompt_response_a", operator: "equals", value: "stop" }],
            else_step: "a",
          },
        ],
      },
    ],
  });
}

describe("dryRun", () => {
  it("walks the flow, says what each step would call, calls nothing and reads no secret", () => {
    const plan = dryRun(document(), "p", { city: "Odesa", mode: "loud" });
    expect(plan.steps.map((s) => s.id)).toEqual(["fetch", "hot", "advise", "both", "mode", "ask"]);
    expect(plan.stoppedAt).toEqual({ reason: "input", stepId: "ask" });
    const [fetch, hot, advise, both, mode, ask] = plan.steps;
    expect(fetch).toMatchObject({
      action: "tool_api",
      method: "GET",
      url: `${servers.api.url}/weather`,
      query: { q: "Odesa", key: "{secrets.KEY}" },
      headers: { Authorization: "Bearer {secrets.TOKEN}" },
      outputVariable: "w",
      attempts: 1,
    });
    expect(hot).toMatchObject({ branch: "then", assumed: true });
    expect(advise).toMatchObject({
      prompt: "Hot in Odesa: {w.temp}",
      system: "Be brief.",
      outputVariable: "summary",
    });
    expect(both?.branches?.map((b) => [b.id, b.method ?? b.action])).toEqual([
      ["record", "POST"],
      ["advise", "prompt"],
    ]);
    expect(mode).toMatchObject({ branch: "else", assumed: false });
    expect(ask).toMatchObject({ prompt: "Anything else about Odesa?", outputVariable: "more" });
    expect(plan.unresolved).toEqual(
      expect.arrayContaining(["secrets.KEY", "secrets.TOKEN", "w.temp", "summary"]),
    );
    expect(servers.api.requests).toHaveLength(0);
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });

  it("takes known branches and renders the end template", () => {
    const plan = dryRun(document(), "p", { city: "Rivne", mode: "quiet", w: { temp: 10 } });
    expect(plan.steps.map((s) => s.id)).toEqual(["fetch", "hot", "cold"]);
    expect(plan.stoppedAt).toEqual({ reason: "end", stepId: "cold" });
    const quiet = dryRun(document(), "p", { city: "Rivne", mode: "quiet", w: { temp: 30 } });
    expect(quiet.steps.at(-1)).toMatchObject({ id: "bye", output: "Bye from Rivne" });
  });

  it("stops at a loop, visiting each step once", () => {
    const plan = dryRun(document(), "loop");
    expect(plan.steps.map((s) => [s.id, s.branch])).toEqual([
      ["a", undefined],
      ["b", "then"],
    ]);
    expect(plan.stoppedAt.reason).toBe("completed");
    const looping = dryRun(document(), "loop", { prompt_response_a: "go on" });
    expect(looping.stoppedAt).toEqual({ reason: "loop", stepId: "a" });
  });

  it("throws unknown_protocol for a protocol the document lacks", () => {
    expect(() => dryRun(document(), "nope")).toThrow(expect.objectContaining({ code: "unknown_protocol" }));
  });
});
