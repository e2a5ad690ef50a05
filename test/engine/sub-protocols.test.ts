import { describe, expect, it } from "vitest";
import { advanceRun, runProtocol } from "../../lib/engine/engine.ts";
import { newRunState } from "../../lib/engine/run-state.ts";
import { type ChildRunEnded, childExecutionId, type RunState, type StepRecord } from "../../lib/core/run.ts";
import { MAX_CALL_DEPTH } from "../../lib/mova/schema.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

/** A document whose `lookup` protocol fetches one order from the tool server. */
function ordersDocument(parentSteps: unknown[]) {
  return documentOf({
    tools: [{ id: "order", endpoint: `${servers.api.url}/orders`, parameters: { id: "{order_id}" } }],
    protocols: [
      { name: "main", steps: parentSteps as never },
      {
        name: "lookup",
        inputs: ["order_id"],
        steps: [
          { id: "fetch", action: "tool_api", tool_api_id: "order", output: "order" },
          { id: "done", action: "end", response_template: "{order.state} ({parent_only})" },
        ],
      },
    ],
  });
}

describe("call", () => {
  it("runs the protocol as a child with its own variables and stores its output", async () => {
    servers.api.route("GET", "/orders", (request) => ({ body: { state: `shipped ${request.query.id}` } }));
    const result = await runProtocol({
      document: ordersDocument([
        { id: "look", action: "call", protocol: "lookup", input: { order_id: "{wanted}" }, output: "found" },
        { id: "reply", action: "end", response_template: "order: {found}" },
      ]),
      protocol: "main",
      variables: { wanted: "A-7", parent_only: "not for the child" },
      ports: servers.ports(),
      executionId: "exec-call",
    });

    expect(result.status).toBe("completed");
    // The child sees its input only, not the parent's other variables.
    expect(result.output).toBe("order: shipped A-7 ({parent_only})");
    expect(result.variables.found).toBe("shipped A-7 ({parent_only})");
    expect(result.variables.order).toBeUndefined();
    const look = result.steps.find((step) => step.id === "look")!;
    expect(look.status).toBe("succeeded");
    expect(look.outputVariable).toBe("found");
    expect(look.children).toHaveLength(1);
    expect(look.children![0]).toMatchObject({
      protocol: "lookup",
      status: "completed",
      executionId: "exec-call~look.1",
      path: ["fetch", "done"],
    });
    expect(look.children![0]!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("fails the step with the child's failure, and goes to on_error when the step has one", async () => {
    servers.api.route("GET", "/orders", { status: 404, body: { error: "no such order" } });
    const steps = (onError: boolean) => [
      {
        id: "look",
        action: "call",
        protocol: "lookup",
        input: { order_id: "A-1" },
        ...(onError && { on_error: "sorry" }),
      },
      { id: "reply", action: "end", response_template: "ok" },
      { id: "sorry", action: "end", response_template: "failed with {error.code}" },
    ];
    const failed = await runProtocol({
      document: ordersDocument(steps(false)),
      protocol: "main",
      ports: servers.ports(),
    });
    expect(failed.status).toBe("failed");
    expect(failed.error?.code).toBe("tool_http_status");
    const look = failed.steps.find((step) => step.id === "look")!;
    expect(look.status).toBe("failed");
    expect(look.children![0]).toMatchObject({ status: "failed", error: { code: "tool_http_status" } });

    const handled = await runProtocol({
      document: ordersDocument(steps(true)),
      protocol: "main",
      ports: servers.ports(),
    });
    expect(handled.status).toBe("completed");
    expect(handled.output).toBe("failed with tool_http_status");
  });

  it("refuses to nest deeper than the limit: a protocol calling itself fails with call_depth_exceeded", async () => {
    servers.api.route("GET", "/ping", { body: { ok: true } });
    const document = documentOf({
      tools: [{ id: "ping", endpoint: `${servers.api.url}/ping` }],
      protocols: [
        {
          name: "again",
          steps: [
            { id: "ping", action: "tool_api", tool_api_id: "ping" },
            { id: "deeper", action: "call", protocol: "again" },
          ],
        },
      ],
    });
    const result = await runProtocol({ document, protocol: "again", ports: servers.ports() });

    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("call_depth_exceeded");
    // The top run and each level down to the limit pinged once before the refusal.
    expect(servers.api.requests.filter((request) => request.path === "/ping")).toHaveLength(
      MAX_CALL_DEPTH + 1,
    );
  });

  it("is one step of a durable run: one checkpoint for the call, the child's steps inside its record", async () => {
    servers.api.route("GET", "/orders", { body: { state: "packed" } });
    const document = ordersDocument([
      { id: "look", action: "call", protocol: "lookup", input: { order_id: "A-2" }, output: "found" },
      { id: "reply", action: "end", response_template: "{found}" },
    ]);
    const checkpoints: Array<{ state: RunState; records: StepRecord[] }> = [];
    const result = await advanceRun({
      document,
      state: newRunState({ document, protocol: "main" }),
      ports: servers.ports(),
      executionId: "exec-durable",
      checkpoint: async (state, records) => {
        checkpoints.push({ state, records });
      },
    });

    expect(result.status).toBe("completed");
    expect(checkpoints.map((item) => item.records.map((record) => record.id))).toEqual([["look"], ["reply"]]);
    expect(checkpoints[0]?.state).toMatchObject({
      status: "running",
      next: "reply",
      variables: { found: "packed ({parent_only})" },
    });
    expect(checkpoints[0]?.records[0]?.children?.[0]).toMatchObject({
      executionId: "exec-durable~look.1",
      path: ["fetch", "done"],
    });
  });

  it("fails with child_not_finished when the child waits for input", async () => {
    const document = documentOf({
      protocols: [
        { name: "main", steps: [{ id: "ask", action: "call", protocol: "form" }] },
        { name: "form", steps: [{ id: "name", action: "input", prompt: "Your name?", variable: "name" }] },
      ],
    });
    const result = await runProtocol({ document, protocol: "main", ports: servers.ports() });
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("child_not_finished");
  });
});

describe("foreach", () => {
  /** Tracks the requests in flight on the tool server; earlier items answer later. */
  function trackedOrders() {
    const seen = { inFlight: 0, maxInFlight: 0, keys: [] as string[] };
    servers.api.route("GET", "/orders", async (request) => {
      seen.inFlight += 1;
      seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
      seen.keys.push(String(request.headers["idempotency-key"]));
      const position = Number(String(request.query.id).slice(1));
      await new Promise((resolve) => setTimeout(resolve, 20 + (8 - position) * 10));
      seen.inFlight -= 1;
      if (request.query.id === "o5" && failFive) return { status: 404, body: { error: "gone" } };
      return { body: { state: `ready ${request.query.id}` } };
    });
    return seen;
  }
  let failFive = false;

  const eachSteps = (extra: Record<string, unknown> = {}) => [
    {
      id: "each",
      action: "foreach",
      items: "{orders}",
      as: "order_id",
      protocol: "lookup",
      concurrency: 3,
      output: "states",
      ...extra,
    },
    { id: "reply", action: "end", response_template: "{states}" },
    { id: "sorry", action: "end", response_template: "{error.code}: {error.message}" },
  ];
  const orders = ["o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7"];

  it("keeps the outputs in the order of the items, with at most `concurrency` children at once", async () => {
    failFive = false;
    const seen = trackedOrders();
    const result = await runProtocol({
      document: ordersDocument(eachSteps()),
      protocol: "main",
      variables: { orders },
      ports: servers.ports(),
      executionId: "exec-each",
    });

    expect(result.status).toBe("completed");
    expect(result.variables.states).toEqual(orders.map((id) => `ready ${id} ({parent_only})`));
    expect(seen.maxInFlight).toBe(3);
    const each = result.steps.find((step) => step.id === "each")!;
    expect(each.children!.map((child) => [child.index, child.status, child.executionId])).toEqual(
      orders.map((_, index) => [index, "completed", `exec-each~each.1~${index}`]),
    );
    // Every child's tool call has its own Idempotency-Key, and the same run gives the same keys.
    expect(new Set(seen.keys).size).toBe(orders.length);
    const first = [...seen.keys].sort();
    seen.keys.length = 0;
    await runProtocol({
      document: ordersDocument(eachSteps()),
      protocol: "main",
      variables: { orders },
      ports: servers.ports(),
      executionId: "exec-each",
    });
    expect([...seen.keys].sort()).toEqual(first);
  });

  it("fails the step when a child fails, unless on_error sends the run elsewhere", async () => {
    failFive = true;
    trackedOrders();
    const failed = await runProtocol({
      // One at a time, so that which items ran before the failure does not depend on timing.
      document: ordersDocument(eachSteps({ concurrency: 1 })),
      protocol: "main",
      variables: { orders },
      ports: servers.ports(),
    });
    expect(failed.status).toBe("failed");
    expect(failed.error?.code).toBe("tool_http_status");
    expect(failed.error?.message).toContain("item 5");
    const each = failed.steps.find((step) => step.id === "each")!;
    expect(each.children!.find((child) => child.index === 5)?.status).toBe("failed");
    // No child starts after the failure: items 6 and 7 never ran.
    expect(servers.api.requests.map((request) => request.query.id)).toEqual(orders.slice(0, 6));
    expect(each.children).toHaveLength(6);

    const handled = await runProtocol({
      document: ordersDocument(eachSteps({ on_error: "sorry" })),
      protocol: "main",
      variables: { orders },
      ports: servers.ports(),
    });
    expect(handled.status).toBe("completed");
    expect(handled.output).toMatch(/^tool_http_status: item 5/);
  });

  it("fails with items_not_a_list when items names no list", async () => {
    const result = await runProtocol({
      document: ordersDocument(eachSteps()),
      protocol: "main",
      variables: { orders: "o1" },
      ports: servers.ports(),
    });
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("items_not_a_list");
  });
});

describe("children handed out", () => {
  it("hands each child's whole result to onChildRun, children of children too, with ids derived from the parent's", async () => {
    servers.api.route("GET", "/orders", (request) => ({ body: { state: `sent ${request.query.id}` } }));
    const document = documentOf({
      tools: [{ id: "order", endpoint: `${servers.api.url}/orders`, parameters: { id: "{order_id}" } }],
      protocols: [
        {
          name: "main",
          steps: [
            { id: "each", action: "foreach", items: "{orders}", as: "order_id", protocol: "lookup" },
            { id: "both", action: "call", protocol: "twice", input: { order_id: "B-1" } },
            { id: "done", action: "end", response_template: "{each_result}" },
          ],
        },
        {
          name: "lookup",
          inputs: ["order_id"],
          steps: [
            { id: "fetch", action: "tool_api", tool_api_id: "order", output: "order" },
            { id: "done", action: "end", response_template: "{order.state}" },
          ],
        },
        {
          name: "twice",
          inputs: ["order_id"],
          steps: [
            { id: "inner", action: "call", protocol: "lookup", input: { order_id: "{order_id}" } },
            { id: "done", action: "end", response_template: "{inner_result}" },
          ],
        },
      ],
    });
    const ended: ChildRunEnded[] = [];
    const result = await runProtocol({
      document,
      protocol: "main",
      variables: { orders: ["A-1", "A-2"] },
      ports: servers.ports(),
      executionId: "ex_parent",
      onChildRun: (child) => ended.push(child),
    });

    expect(result.status).toBe("completed");
    const byId = new Map(ended.map((child) => [child.executionId, child]));
    expect([...byId.keys()].sort()).toEqual([
      "ex_parent~both.1",
      "ex_parent~both.1~inner.1",
      "ex_parent~each.1~0",
      "ex_parent~each.1~1",
    ]);
    const second = byId.get("ex_parent~each.1~1")!;
    expect(second).toMatchObject({
      parentExecutionId: "ex_parent",
      parentStep: "each",
      parentVisit: 1,
      index: 1,
    });
    expect(second.result.protocol).toBe("lookup");
    expect(second.result.output).toBe("sent A-2");
    // The child's own step records, in full: the tool step with its output and status.
    expect(second.result.steps.map((step) => [step.id, step.action, step.status])).toEqual([
      ["fetch", "tool_api", "succeeded"],
      ["done", "end", "succeeded"],
    ]);
    expect(second.result.steps[0]!.output).toEqual({ state: "sent A-2" });
    // A grandchild names the child as its parent.
    expect(byId.get("ex_parent~both.1~inner.1")).toMatchObject({
      parentExecutionId: "ex_parent~both.1",
      parentStep: "inner",
    });
    expect(byId.get("ex_parent~both.1")!.result.steps.map((step) => step.id)).toEqual(["inner", "done"]);
    // The parent's step records keep the summary, with the same ids.
    const each = result.steps.find((step) => step.id === "each")!;
    expect(each.children!.map((child) => child.executionId)).toEqual([
      "ex_parent~each.1~0",
      "ex_parent~each.1~1",
    ]);
  });

  it("hands nothing out for a run without an execution id, and a throwing hook fails no step", async () => {
    servers.api.route("GET", "/orders", { body: { state: "ok" } });
    const document = ordersDocument([
      { id: "look", action: "call", protocol: "lookup", input: { order_id: "A-9" }, output: "found" },
      { id: "reply", action: "end", response_template: "{found}" },
    ]);
    const ended: ChildRunEnded[] = [];
    const without = await runProtocol({
      document,
      protocol: "main",
      ports: servers.ports(),
      onChildRun: (child) => ended.push(child),
    });
    expect(without.status).toBe("completed");
    expect(ended).toEqual([]);

    const throwing = await runProtocol({
      document,
      protocol: "main",
      ports: servers.ports(),
      executionId: "ex_throwing",
      onChildRun: () => {
        throw new Error("the recorder is down");
      },
    });
    expect(throwing.status).toBe("completed");
    expect(throwing.output).toBe("ok ({parent_only})");
  });

  it("derives URL-safe ids, a step id that is not URL-safe standing as a hash", () => {
    expect(childExecutionId("ex_1", "each_order", 2, 7)).toBe("ex_1~each_order.2~7");
    const hashed = childExecutionId("ex_1", "look up/1", 1, undefined);
    expect(hashed).toMatch(/^ex_1~h[0-9a-f]{16}\.1$/);
    expect(childExecutionId("ex_1", "look up/2", 1, undefined)).not.toBe(hashed);
  });
});
