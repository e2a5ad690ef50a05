import { describe, expect, it } from "vitest";
import { validateDocument } from "../../lib/mova/validate.ts";

function documentWith(step: Record<string, unknown>) {
  return {
    version: "2.2",
    protocols: [
      { name: "main", steps: [step, { id: "done", action: "end" }] },
      { name: "lookup", inputs: ["order_id"], steps: [{ id: "end", action: "end" }] },
    ],
  };
}

describe("call and foreach validation", () => {
  it("accepts a call that gives the protocol's inputs", () => {
    const result = validateDocument(
      documentWith({ id: "look", action: "call", protocol: "lookup", input: { order_id: "A-1" } }),
    );
    expect(result.errors).toEqual([]);
  });

  it("reports a protocol that does not exist as unknown_reference", () => {
    const result = validateDocument(documentWith({ id: "look", action: "call", protocol: "nowhere" }));
    expect(result.errors.map((issue) => [issue.code, issue.path])).toContainEqual([
      "unknown_reference",
      "$.protocols[0].steps[0].protocol",
    ]);
  });

  it("reports inputs the step does not give as missing_input", () => {
    const call = validateDocument(
      documentWith({ id: "look", action: "call", protocol: "lookup", input: {} }),
    );
    expect(call.errors.map((issue) => issue.code)).toEqual(["missing_input"]);
    expect(call.errors[0]?.message).toContain("`order_id`");
    // foreach gives its item under `as`.
    const each = validateDocument(
      documentWith({ id: "each", action: "foreach", items: "{ids}", as: "order_id", protocol: "lookup" }),
    );
    expect(each.errors).toEqual([]);
    const wrongName = validateDocument(
      documentWith({ id: "each", action: "foreach", items: "{ids}", protocol: "lookup" }),
    );
    expect(wrongName.errors.map((issue) => issue.code)).toEqual(["missing_input"]);
  });

  it("refuses a concurrency above 50", () => {
    const result = validateDocument(
      documentWith({
        id: "each",
        action: "foreach",
        items: "{ids}",
        as: "order_id",
        protocol: "lookup",
        concurrency: 51,
      }),
    );
    expect(result.valid).toBe(false);
  });
});
