/** Validation of `wait`, `wait_event` and `on_error`: their references, their fields, their placeholders. */
import { describe, expect, it } from "vitest";
import { type ValidationIssue, validateDocument } from "../../lib/mova/validate.ts";

const codes = (issues: ValidationIssue[]) => issues.map((issue) => [issue.code, issue.path]);
const documentWith = (steps: unknown[]) => ({ version: "2.2", protocols: [{ name: "p", steps }] });

describe("wait, wait_event and on_error in the validator", () => {
  it("accepts them, with {error.*}, {execution.id} and {callback.EVENT} as built-ins", () => {
    const result = validateDocument(
      documentWith([
        { id: "nap", action: "wait", seconds: 30, on_error: "oops" },
        { id: "until", action: "wait", until: "{now}" },
        { id: "ask", action: "wait_event", event: "approved", timeout_seconds: 60, on_timeout: "late" },
        { id: "done", action: "end", response_template: "{ask_event.by} {execution.id} {callback.approved}" },
        { id: "late", action: "end", response_template: "late" },
        { id: "oops", action: "end", response_template: "{error.step} {error.code} {error.message}" },
      ]),
    );
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it("on_error and on_timeout naming no step are unknown_reference", () => {
    const result = validateDocument(
      documentWith([
        { id: "ask", action: "wait_event", event: "go", on_timeout: "nowhere", on_error: "nothing" },
        { id: "done", action: "end" },
      ]),
    );
    expect(codes(result.errors)).toEqual(
      expect.arrayContaining([
        ["unknown_reference", "$.protocols[0].steps[0].on_error"],
        ["unknown_reference", "$.protocols[0].steps[0].on_timeout"],
      ]),
    );
  });

  it("a wait takes exactly one of seconds and until; an event name is a plain word", () => {
    const neither = validateDocument(documentWith([{ id: "nap", action: "wait" }]));
    expect(codes(neither.errors)).toContainEqual(["schema", "$.protocols[0].steps[0]"]);
    const both = validateDocument(documentWith([{ id: "nap", action: "wait", seconds: 1, until: "{now}" }]));
    expect(codes(both.errors)).toContainEqual(["schema", "$.protocols[0].steps[0]"]);
    const badEvent = validateDocument(documentWith([{ id: "ask", action: "wait_event", event: "a.b" }]));
    expect(badEvent.errors.map((issue) => issue.code)).toContain("schema");
  });

  it("a step reached only through on_error or on_timeout is reachable", () => {
    const result = validateDocument(
      documentWith([
        { id: "ask", action: "wait_event", event: "go", on_timeout: "late" },
        { id: "done", action: "end" },
        { id: "late", action: "end" },
      ]),
    );
    expect(result.warnings.map((issue) => issue.code)).not.toContain("unreachable_step");
  });
});
