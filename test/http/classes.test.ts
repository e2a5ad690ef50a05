/**
 * A document in the specification's classes form through the API: stored, run through
 * POST /executions with a session (whose data the document's session class starts and the
 * run's response_mapping extends) and without one.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;
const pizza = JSON.parse(
  readFileSync(new URL("../../examples/pizza-order-classes.json", import.meta.url), "utf8"),
) as { classes: { session: { data: Record<string, unknown> } } };

beforeAll(async () => {
  api = await startApiFixture();
  // The document's own session data points the tools at the loopback pizzeria.
  const document = structuredClone(pizza);
  document.classes.session.data.pizzeria_url = api.tools.url;
  const stored = await api.call("PUT", "/documents/pizza", { body: document });
  expect(stored.status).toBe(201);
  expect(stored.body.warnings).toEqual([]);
  api.tools.route("GET", "/menu/large", { body: { data: { price: 21, available: true } } });
  api.tools.route("GET", "/menu/medium", { body: { price: 15, available: false } });
  api.tools.route("POST", "/orders", () => ({
    status: 201,
    body: { order_id: `B-${api.tools.requests.length}` },
  }));
});
afterAll(async () => {
  await api?.close();
});

describe("a classes-form document through the API", () => {
  it("runs with a session: the session starts with the class's data and keeps what the run mapped", async () => {
    const created = await api.call("POST", "/sessions", {
      body: { document: "pizza", userId: "ada", data: { user_name: "Ada Lovelace" } },
    });
    expect(created.status).toBe(201);
    const { sessionId } = created.body;
    const before = await api.call("GET", `/sessions/${sessionId}`);
    expect(before.body.data).toMatchObject({ user_name: "Ada Lovelace", size: "large", budget: 30 });

    const run = await api.call("POST", "/executions", {
      body: { document: "pizza", protocol: "pizza_order", sessionId },
    });
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({
      status: "completed",
      path: ["check_menu", "decide", "place_order", "confirm", "done"],
    });
    const order = api.tools.requests.filter((request) => request.method === "POST").at(-1);
    expect(order?.json).toMatchObject({ customer: "Ada Lovelace", size: "large" });
    const orderId = run.body.variables.order_id as string;
    expect(orderId).toMatch(/^B-\d+$/);
    expect(run.body.output).toContain(`Order ${orderId} placed.`);

    const after = await api.call("GET", `/sessions/${sessionId}`);
    expect(after.body.data).toMatchObject({
      user_name: "Ada Lovelace",
      price: 21,
      available: true,
      last_order: orderId,
    });
  });

  it("runs without a session on the session class's data", async () => {
    const run = await api.call("POST", "/executions", {
      body: { document: "pizza", protocol: "pizza_order" },
    });
    expect(run.status).toBe(200);
    expect(run.body.status).toBe("completed");
    const order = api.tools.requests.filter((request) => request.method === "POST").at(-1);
    expect(order?.json).toMatchObject({ customer: "Ada", size: "large", phone: "+44 20 7946 0000" });
  });

  it("refuses a classes document with errors, pointing into the classes as written", async () => {
    const broken = structuredClone(pizza) as unknown as {
      classes: { protocol: { steps: Array<Record<string, unknown>> } };
    };
    broken.classes.protocol.steps[0]!.next_step_id = "nowhere";
    const stored = await api.call("PUT", "/documents/broken-pizza", { body: broken });
    expect(stored.status).toBe(422);
    expect(stored.body.error.details.errors).toContainEqual(
      expect.objectContaining({
        code: "unknown_reference",
        path: "$.classes.protocol.steps[0].next_step_id",
      }),
    );
  });
});
