/**
 * The flow graph the dashboard draws: nodes are the document's steps with their figures,
 * edges the transitions weighted by the runs that took them, laid out by dagre.
 */
import { describe, expect, it } from "vitest";
import { flowGraph, type StepFigures, transitionCounts } from "../../dashboard/flow.ts";

function figures(step: string, total: number, failed = 0, action = "prompt"): StepFigures {
  const succeeded = total - failed;
  return {
    step,
    action,
    total,
    succeeded,
    failed,
    successRate: total === 0 ? null : succeeded / total,
    latency: { p50: 10, p95: 40 },
  };
}

const linear = [
  { id: "ask", action: "prompt" },
  { id: "check", action: "tool_api" },
  { id: "done", action: "end" },
];

describe("flowGraph", () => {
  it("weights each transition by the completed runs on the paths, and by the records of a step with one way in", () => {
    const graph = flowGraph({
      steps: linear,
      statistics: [figures("ask", 40), figures("check", 40, 15, "tool_api"), figures("done", 25, 0, "end")],
      patterns: [
        { type: "strategy", path: ["ask", "check", "done"], figures: { runs: 25, taken: 40 } },
        { type: "failure_point", step: "check", figures: { failureRate: 0.375 } },
      ],
    });
    expect(graph.nodes.map((n) => n.id)).toEqual(["ask", "check", "done"]);
    // 15 runs failed at `check`: they took ask → check but never check → done.
    expect(graph.edges.map((e) => [e.from, e.to, e.taken])).toEqual([
      ["ask", "check", 40],
      ["check", "done", 25],
    ]);
    const check = graph.nodes.find((n) => n.id === "check")!;
    expect(check).toMatchObject({ failurePoint: true, failureRate: 0.375, total: 40, p50: 10, p95: 40 });
    expect(graph.nodes.find((n) => n.id === "ask")!.failurePoint).toBe(false);
    // Top to bottom, one rank per step, every edge routed.
    const ys = graph.nodes.map((n) => n.y);
    expect(ys[0]).toBeLessThan(ys[1]!);
    expect(ys[1]).toBeLessThan(ys[2]!);
    for (const edge of graph.edges) expect(edge.points.length).toBeGreaterThanOrEqual(2);
    expect(graph.width).toBeGreaterThan(0);
    expect(graph.height).toBeGreaterThan(ys[2]!);
  });

  it("keeps the declared transitions no run took (condition branches, on_error) with weight 0", () => {
    const graph = flowGraph({
      steps: [
        {
          id: "route",
          action: "condition",
          conditions: [{ variable: "x", operator: "equals", value: 1 }],
          else_step: "slow",
        },
        { id: "fast", action: "prompt", next_step: "done", on_error: "apology" },
        { id: "slow", action: "prompt" },
        { id: "apology", action: "prompt" },
        { id: "done", action: "end" },
      ],
      statistics: [figures("route", 10), figures("fast", 10), figures("done", 10, 0, "end")],
      patterns: [{ type: "strategy", path: ["route", "fast", "done"], figures: { runs: 10, taken: 10 } }],
    });
    const taken = Object.fromEntries(graph.edges.map((e) => [`${e.from}>${e.to}`, e.taken]));
    expect(taken).toEqual({
      "route>fast": 10,
      "fast>done": 10,
      "route>slow": 0,
      "fast>apology": 0,
      "slow>apology": 0,
      "apology>done": 0,
    });
    // `done` has two ways in: only the completed runs' count, not its records, goes on each.
    expect(graph.nodes.find((n) => n.id === "slow")).toMatchObject({ total: 0, successRate: null });
  });

  it("shows a step only the history knows (an older version's), and ends an explicit flow's step without next_step", () => {
    const graph = flowGraph({
      steps: [
        { id: "a", action: "prompt" },
        { id: "b", action: "prompt" },
      ],
      flow: "explicit",
      statistics: [figures("a", 5), figures("old", 3)],
      patterns: [{ type: "strategy", path: ["a", "old"], figures: { runs: 3 } }],
    });
    expect(graph.nodes.map((n) => n.id)).toEqual(["a", "b", "old"]);
    expect(graph.edges.map((e) => [e.from, e.to, e.taken])).toEqual([["a", "old", 3]]);
  });
});

describe("transitionCounts", () => {
  it("adds the runs of every path through a transition", () => {
    const counts = transitionCounts([
      { type: "strategy", path: ["a", "b", "c"], figures: { runs: 4 } },
      { type: "strategy", path: ["a", "b", "d"], figures: { runs: 6 } },
      { type: "failure_point", step: "b", figures: {} },
    ]);
    expect(Object.fromEntries([...counts].map(([k, v]) => [k.replace("\u0000", ">"), v]))).toEqual({
      "a>b": 10,
      "b>c": 4,
      "b>d": 6,
    });
  });
});
