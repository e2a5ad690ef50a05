import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addUsage, costOf, priceOf } from "../../lib/core/cost.ts";

const table = {
  "gpt-4o-mini": { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 },
  offline: { inputPerMillionUsd: 0, outputPerMillionUsd: 0 },
};
const usage = (promptTokens: number, completionTokens: number) => ({
  promptTokens,
  completionTokens,
  totalTokens: promptTokens + completionTokens,
});

describe("costOf", () => {
  it("prices input and output tokens per million", () => {
    expect(costOf(table, "gpt-4o-mini", usage(1_000_000, 0))).toBe(0.15);
    expect(costOf(table, "gpt-4o-mini", usage(0, 1_000_000))).toBe(0.6);
    expect(costOf(table, "gpt-4o-mini", usage(2000, 500))).toBeCloseTo(0.0006, 10);
  });

  it("is unknown (undefined), not zero, for a model the table does not know or without usage", () => {
    expect(costOf(table, "mystery-model", usage(10, 10))).toBeUndefined();
    expect(costOf(undefined, "gpt-4o-mini", usage(10, 10))).toBeUndefined();
    expect(costOf(table, "gpt-4o-mini", undefined)).toBeUndefined();
    expect(costOf(table, undefined, usage(10, 10))).toBeUndefined();
  });

  it("is a known zero for a free model", () => {
    expect(costOf(table, "offline", usage(100, 100))).toBe(0);
  });

  it("prices a provider's dated snapshot by its undated name, and nothing by a prefix alone", () => {
    expect(priceOf(table, "gpt-4o-mini-2024-07-18")).toBe(table["gpt-4o-mini"]);
    expect(priceOf(table, "gpt-4o-mini-high")).toBeUndefined();
    expect(priceOf(table, "constructor")).toBeUndefined();
  });

  it("never goes negative and grows with the tokens", () => {
    fc.assert(
      fc.property(fc.nat(10_000_000), fc.nat(10_000_000), fc.nat(1000), (p, c, more) => {
        const a = costOf(table, "gpt-4o-mini", usage(p, c)) as number;
        const b = costOf(table, "gpt-4o-mini", usage(p + more, c + more)) as number;
        expect(a).toBeGreaterThanOrEqual(0);
        expect(b).toBeGreaterThanOrEqual(a);
      }),
    );
  });
});

describe("addUsage", () => {
  it("adds every count and keeps what is there when one side is missing", () => {
    expect(addUsage(usage(1, 2), usage(3, 4))).toEqual(usage(4, 6));
    expect(addUsage(undefined, usage(3, 4))).toEqual(usage(3, 4));
    expect(addUsage(usage(1, 2), undefined)).toEqual(usage(1, 2));
    expect(addUsage(undefined, undefined)).toBeUndefined();
  });
});
