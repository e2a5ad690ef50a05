/**
 * The engine's `onStepStart` observer: told of each step as it is entered (before it runs),
 * with its visit number, in the order of the run; an observer that throws changes nothing.
 */
import { describe, expect, it } from "vitest";
import { advanceRun } from "../../lib/engine/engine.ts";
import { newRunState } from "../../lib/engine/run-state.ts";
import type { StepRecord } from "../../lib/core/run.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers((s) => {
  s.api.route("GET", "/next", (request) => ({ body: { n: Number(request.query.n ?? 0) + 1 } }));
});

const loop = () =>
  documentOf({
    tools: [
      {
        id: "counter",
        name: "Counter",
        endpoint: `${servers.api.url}/next`,
        method: "GET",
        parameters: { n: "{counter.n}" },
      },
    ],
    protocols: [
      {
        name: "loop",
        steps: [
          { id: "tick", action: "tool_api", tool_api_id: "counter", output: "counter" },
          {
            id: "more",
            action: "condition",
            conditions: [{ variable: "counter.n", operator: "less_than", value: 2 }],
            next_step: "tick",
            else_step: "done",
          },
          { id: "done", action: "end", response_template: "counted to {counter.n}" },
        ],
      },
    ],
  });

describe("onStepStart", () => {
  it("tells each step as it is entered, before its call and its record, with its visit", async () => {
    const document = loop();
    const seen: string[] = [];
    const result = await advanceRun({
      document,
      ports: servers.ports(),
      state: newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } }),
      onStepStart: (step) => {
        seen.push(`start ${step.id} ${step.action} ${step.visit} calls=${servers.api.requests.length}`);
      },
      onStep: (record: StepRecord) => seen.push(`finish ${record.id}`),
    });
    expect(result.status).toBe("completed");
    expect(seen).toEqual([
      "start tick tool_api 1 calls=0",
      "finish tick",
      "start more condition 1 calls=1",
      "finish more",
      "start tick tool_api 2 calls=1",
      "finish tick",
      "start more condition 2 calls=2",
      "finish more",
      "start done end 1 calls=2",
      "finish done",
    ]);
  });

  it("a throwing observer changes nothing of the run", async () => {
    const document = loop();
    const quiet = await advanceRun({
      document,
      ports: servers.ports(),
      state: newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } }),
    });
    const loud = await advanceRun({
      document,
      ports: servers.ports(),
      state: newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } }),
      onStepStart: () => {
        throw new Error("observer down");
      },
    });
    expect(loud.status).toBe("completed");
    expect(loud.output).toEqual(quiet.output);
    expect(loud.path).toEqual(quiet.path);
  });
});
