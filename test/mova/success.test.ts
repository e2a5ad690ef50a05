/** A protocol's `success` criteria: validated like step conditions, and judged on a completed run's variables. */
import { describe, expect, it } from "vitest";
import { runOutcome } from "../../lib/mova/success.ts";
import { validateDocument } from "../../lib/mova/validate.ts";

const protocol = (success: unknown) => ({
  version: "2.2",
  protocols: [
    {
      name: "answer",
      success,
      steps: [
        { id: "ask", action: "prompt", prompt: "Answer", output: "answer" },
        { id: "end", action: "end" },
      ],
    },
  ],
});

describe("success criteria", () => {
  it("are part of a valid document, and a wrong operator is invalid_operator at its path", () => {
    const ok = validateDocument(protocol([{ variable: "answer", operator: "exists" }]));
    expect(ok.valid).toBe(true);
    expect(ok.document?.protocols[0]?.success).toEqual([{ variable: "answer", operator: "exists" }]);
    const bad = validateDocument(protocol([{ variable: "answer", operator: "resembles" }]));
    expect(bad.valid).toBe(false);
    expect(bad.errors).toContainEqual(
      expect.objectContaining({ code: "invalid_operator", path: "$.protocols[0].success[0].operator" }),
    );
    expect(validateDocument(protocol([])).valid).toBe(false);
  });

  it("say succeeded when every condition holds, unsuccessful when one does not, unknown without criteria", () => {
    const criteria = {
      success: [
        { variable: "answer", operator: "exists" },
        { variable: "score", operator: "greater_or_equal", value: 0.5 },
      ],
    };
    expect(runOutcome(criteria, { answer: "yes", score: 0.9 })).toBe("succeeded");
    expect(runOutcome(criteria, { answer: "yes", score: 0.2 })).toBe("unsuccessful");
    expect(runOutcome(criteria, { score: 0.9 })).toBe("unsuccessful");
    expect(runOutcome({}, { answer: "yes" })).toBe("unknown");
    expect(runOutcome(undefined, {})).toBe("unknown");
  });

  it("read the run's output as `output` when no variable has that name", () => {
    const criteria = { success: [{ variable: "output.status", operator: "equals", value: "done" }] };
    expect(runOutcome(criteria, {}, { status: "done" })).toBe("succeeded");
    expect(runOutcome(criteria, { output: { status: "no" } }, { status: "done" })).toBe("unsuccessful");
  });
});
