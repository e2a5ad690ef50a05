import { describe, expect, it } from "vitest";
import { MAX_MATCHED_TEXT, patternProblem, testPattern } from "../../lib/mova/regex.ts";
import { validateDocument } from "../../lib/mova/validate.ts";

describe("testPattern (RE2 semantics)", () => {
  it.each([
    ["^\\d{3}-\\d{4}$", "555-1234", true],
    ["\\d{3}", "call 555 now", true],
    ["^[\\w.+-]+@\\w+\\.\\w+$", "a.b+c@example.com", true],
    ["(?i)hello", "HeLLo there", true],
    ["^\\p{L}+$", "привіт", true],
    ["^\\p{L}+$", "hi5", false],
    ["(?<year>\\d{4})-(?<month>\\d\\d)", "on 2024-05", true],
    ["^(a+)+$", `${"a".repeat(30)}!`, false],
    ["^(a+)+$", "aaaa", true],
  ])("%s against %j is %s", (pattern, text, expected) => {
    expect(testPattern(pattern, text)).toBe(expected);
  });

  it("matches nothing with an unusable pattern instead of throwing", () => {
    expect(testPattern("(a)\\1", "aa")).toBe(false);
    expect(testPattern("[", "[")).toBe(false);
  });

  it("searches only the first MAX_MATCHED_TEXT characters", () => {
    const text = `${"a".repeat(MAX_MATCHED_TEXT)}needle`;
    expect(testPattern("needle", text)).toBe(false);
    expect(testPattern("needle", text.slice(10))).toBe(true);
  });

  it("anchors at the start for matches_regex", () => {
    expect(testPattern("\\d+", "42 apples", { anchor: "start" })).toBe(true);
    expect(testPattern("\\d+", "apples 42", { anchor: "start" })).toBe(false);
    expect(testPattern("a|b", "b", { anchor: "start" })).toBe(true);
    expect(testPattern("a)|(b", "b", { anchor: "start" })).toBe(false);
  });
});

describe("patternProblem", () => {
  it.each([
    ["(a)\\1", /backreferences/],
    ["(?=a)a", /lookaround/],
    ["x".repeat(501), /longer than 500/],
    [`${".{1,1000}".repeat(30)}x`, /too large once compiled/],
    [5, /must be a string/],
  ])("refuses %j", (pattern, message) => {
    expect(patternProblem(pattern)).toMatch(message);
  });

  it("accepts the catastrophic-backtracking pattern: it is linear here", () => {
    expect(patternProblem("^(a+)+$")).toBeUndefined();
  });

  it("is the validator's check of `matches`", () => {
    const result = validateDocument({
      version: "2.2",
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "c",
              action: "condition",
              conditions: [{ variable: "user_input", operator: "matches", value: "(\\w)\\1" }],
              else_step: "e",
            },
            { id: "e", action: "end" },
          ],
        },
      ],
    });
    expect(result.errors.map((issue) => [issue.code, issue.path])).toEqual([
      ["invalid_operator", "$.protocols[0].steps[0].conditions[0].value"],
    ]);
  });
});
