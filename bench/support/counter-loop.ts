/**
 * The counter loop the durability and live-events benchmarks advance: a tool step and a
 * condition per round, then the end, against instant ports (the tool adds one to `n`), so
 * only the engine and what a leg writes are measured.
 */
import type { EnginePorts } from "../../lib/ports.ts";
import { MovaDocument } from "../../lib/mova/schema.ts";

export const instantPorts: EnginePorts = {
  llm: { offline: true, complete: async () => ({ text: "", model: "none" }) },
  tools: {
    call: async (request) => ({ status: 200, headers: {}, body: { n: Number(request.query?.n ?? 0) + 1 } }),
  },
};

/** A loop of `rounds` rounds: 2 steps each, then `done`. */
export function loopDocument(rounds: number): MovaDocument {
  return MovaDocument.parse({
    version: "2.2",
    tools: [
      {
        id: "counter",
        name: "Counter",
        endpoint: "https://counter.example/next",
        method: "GET",
        parameters: { n: "{counter.n}" },
      },
    ],
    protocols: [
      {
        name: "loop",
        max_steps: 100_000,
        steps: [
          { id: "tick", action: "tool_api", tool_api_id: "counter", output: "counter" },
          {
            id: "more",
            action: "condition",
            conditions: [{ variable: "counter.n", operator: "less_than", value: rounds }],
            next_step: "tick",
            else_step: "done",
          },
          { id: "done", action: "end", response_template: "counted to {counter.n}" },
        ],
      },
    ],
  });
}
