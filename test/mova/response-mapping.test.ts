import { describe, expect, it } from "vitest";
import { applyErrorHandling } from "../../lib/mova/error-handling.ts";
import {
  applyResponseMapping,
  readResponsePath,
  SESSION_WRITES,
  sessionTarget,
  withSessionWrites,
} from "../../lib/mova/response-mapping.ts";
import { validateDocument } from "../../lib/mova/validate.ts";
import { createResolver } from "../../lib/engine/variables.ts";

describe("response_mapping", () => {
  it("reads a path of the response, then under its data object, else nothing", () => {
    const body = { available: true, data: { price: 9, available: false }, list: [{ id: "x" }] };
    expect(readResponsePath(body, "response.available")).toBe(true);
    expect(readResponsePath(body, "response.price")).toBe(9);
    expect(readResponsePath(body, "list.0.id")).toBe("x");
    expect(readResponsePath(body, "response")).toBe(body);
    expect(readResponsePath(body, "response.missing")).toBeUndefined();
    expect(readResponsePath("text", "response.a")).toBeUndefined();
  });

  it("sets variables and session data keys; an absent path sets nothing", () => {
    const variables: Record<string, unknown> = Object.create(null);
    const outcome = applyResponseMapping(
      {
        "session.data.available": "response.available",
        "session.city": "response.where.city",
        order_id: "response.id",
        "order.total": "response.total",
        missing: "response.nope",
      },
      { available: false, where: { city: "Lviv" }, data: { id: 7, total: 12.5 } },
      variables,
    );
    expect(outcome).toEqual({
      set: ["session.data.available", "session.city", "order_id", "order.total"],
      absent: ["missing"],
    });
    expect(variables).toEqual({
      session: { available: false, city: "Lviv" },
      order_id: 7,
      order: { total: 12.5 },
    });
    expect(sessionTarget("session.data.a.b")).toBe("a.b");
    expect(sessionTarget("sessions.a")).toBeUndefined();
  });

  it("never writes through an object's machinery", () => {
    const variables: Record<string, unknown> = {};
    const outcome = applyResponseMapping(
      {
        "__proto__.polluted": "response.x",
        "session.data.constructor": "response.x",
        "a.prototype": "response.x",
      },
      { x: 1 },
      variables,
    );
    expect(outcome.set).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("lays a run's session writes over the session's data", () => {
    expect(withSessionWrites({ a: 1, b: 2 }, { [SESSION_WRITES]: { b: 3, c: 4 } })).toEqual({
      a: 1,
      b: 3,
      c: 4,
    });
    expect(withSessionWrites({ a: 1 }, { [SESSION_WRITES]: "not an object" })).toEqual({ a: 1 });
  });
});

describe("session placeholders", () => {
  const resolve = createResolver({
    variables: { [SESSION_WRITES]: { price: 20 } },
    session: { user_name: "Ada", price: 10, data: { odd: true } },
    sessionDefaults: { user_name: "default", size: "large" },
    now: () => 0,
  });
  it("read the run's writes, then the session's data, then the document's session class", () => {
    expect(resolve("session.data.price")).toBe(20);
    expect(resolve("session.price")).toBe(20);
    expect(resolve("session.data.user_name")).toBe("Ada");
    expect(resolve("session.data.size")).toBe("large");
    // A session whose data really has a `data` key is still read as written.
    expect(resolve("session.data.odd")).toBe(true);
    expect(resolve("session.data.none")).toBeUndefined();
    expect(resolve("session")).toEqual({ user_name: "Ada", size: "large", price: 20, data: { odd: true } });
  });

  it("give a run without a session the document's session class data", () => {
    const alone = createResolver({ variables: {}, sessionDefaults: { user_name: "Олена" }, now: () => 0 });
    expect(alone("session.data.user_name")).toBe("Олена");
    expect(createResolver({ variables: {}, now: () => 0 })("session.data.user_name")).toBeUndefined();
  });
});

describe("error_handling", () => {
  const document = (handling: Record<string, unknown>, steps: Array<Record<string, unknown>>) =>
    validateDocument({ version: "2.2", protocols: [{ name: "p", error_handling: handling, steps }] });

  it("becomes the retry and on_error of the prompt and tool_api steps that set none", () => {
    const result = document({ retry_count: 2, fallback_step_id: "sorry" }, [
      { id: "ask", action: "prompt", prompt: "hi" },
      { id: "own", action: "prompt", prompt: "hi", retry: { attempts: 5 }, on_error: "ask" },
      {
        id: "gate",
        action: "condition",
        conditions: [{ variable: "x", operator: "exists" }],
        else_step: "sorry",
      },
      { id: "sorry", action: "prompt", prompt: "sorry" },
    ]);
    expect(result.errors).toEqual([]);
    const [ask, own, gate, sorry] = result.document!.protocols[0]!.steps;
    expect(ask).toMatchObject({ retry: { attempts: 3, backoff_ms: 200 }, on_error: "sorry" });
    expect(own).toMatchObject({ retry: { attempts: 5 }, on_error: "ask" });
    expect(gate).not.toHaveProperty("on_error");
    // The fallback step does not fall back onto itself.
    expect(sorry).toMatchObject({ retry: { attempts: 3 } });
    expect(sorry).not.toHaveProperty("on_error");
    // Applying it again changes nothing.
    expect(applyErrorHandling(structuredClone(result.document!))).toEqual(result.document);
  });

  it("reports a fallback_step_id that names no step, and a retry_count out of range", () => {
    const result = document({ retry_count: 99, fallback_step_id: "nowhere" }, [{ id: "a", action: "end" }]);
    expect(result.errors.map((issue) => [issue.code, issue.path])).toEqual(
      expect.arrayContaining([
        ["schema", "$.protocols[0].error_handling.retry_count"],
        ["unknown_reference", "$.protocols[0].error_handling.fallback_step_id"],
      ]),
    );
  });

  it("makes the fallback step reachable for the flow checks", () => {
    const result = document({ fallback_step_id: "sorry" }, [
      { id: "ask", action: "prompt", prompt: "hi", next_step: "done" },
      { id: "sorry", action: "end" },
      { id: "done", action: "end" },
    ]);
    expect(result.warnings.filter((issue) => issue.code === "unreachable_step")).toEqual([]);
  });
});

describe("validation of the specification's conditions", () => {
  const check = (conditions: unknown, extra: Record<string, unknown> = {}) =>
    validateDocument({
      version: "2.2",
      ...extra,
      protocols: [
        {
          name: "p",
          steps: [
            { id: "c", action: "condition", conditions, else_step: "e" },
            { id: "e", action: "end" },
          ],
        },
      ],
    });

  it("reports bad in_range and matches_regex values, unknown targets and logic", () => {
    const result = check({
      logic: "xor",
      rules: [
        { variable: "a", operator: "in_range", value: [1] },
        { variable: "a", operator: "matches_regex", value: "(" },
        { variable: "a", operator: "exists", next_step_id: "ghost" },
        { sub_conditions: { rules: [{ variable: "a", operator: "bogus" }], default_next_step_id: "ghost2" } },
        { operator: "equals" },
      ],
      default_next_step_id: "ghost3",
    });
    const found = result.errors.map((issue) => `${issue.code} ${issue.path}`);
    expect(found).toEqual(
      expect.arrayContaining([
        "schema $.protocols[0].steps[0].conditions.logic",
        "invalid_operator $.protocols[0].steps[0].conditions.rules[0].value",
        "invalid_operator $.protocols[0].steps[0].conditions.rules[1].value",
        "unknown_reference $.protocols[0].steps[0].conditions.rules[2].next_step_id",
        "invalid_operator $.protocols[0].steps[0].conditions.rules[3].sub_conditions.rules[0].operator",
        "unknown_reference $.protocols[0].steps[0].conditions.rules[3].sub_conditions.default_next_step_id",
        "unknown_reference $.protocols[0].steps[0].conditions.default_next_step_id",
        "schema $.protocols[0].steps[0].conditions.rules[4].variable",
      ]),
    );
  });

  it("knows the session class's keys and those response_mapping writes", () => {
    const result = validateDocument({
      version: "2.2",
      classes: {
        session: { data: { user_name: "Ada" } },
        tool_api: {
          id: "t",
          url: "https://x.example/",
          response_mapping: { "session.data.price": "response.p" },
        },
        protocol: {
          name: "p",
          steps: [
            { id: "call", action: "tool_api", tool_api_id: "t", next_step_id: "say" },
            {
              id: "say",
              action: "end",
              response_template: "{session.data.user_name} {session.data.price} {session.data.usr_name}",
            },
          ],
        },
      },
    });
    expect(result.valid).toBe(true);
    expect(result.warnings).toEqual([
      expect.objectContaining({
        code: "unresolvable_placeholder",
        path: "$.classes.protocol.steps[1].response_template",
        message: expect.stringContaining("`usr_name`"),
      }),
    ]);
  });
});
