/** The traffic split's choice: stable per key, in proportion to the shares. */
import { describe, expect, it } from "vitest";
import { baseOf, chooseVersion } from "../../lib/services/traffic-split.ts";

describe("chooseVersion", () => {
  it("gives the same key the same version, and keys in proportion to the shares", () => {
    const weights = { "3": 90, "4": 10 };
    expect(chooseVersion(weights, "user:ada")).toBe(chooseVersion(weights, "user:ada"));
    const counts = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const version = chooseVersion(weights, `user:${i}`);
      counts.set(version, (counts.get(version) ?? 0) + 1);
    }
    // 10 % of 10,000 ± 4 standard deviations (30).
    expect(counts.get(4)).toBeGreaterThan(880);
    expect(counts.get(4)).toBeLessThan(1120);
    expect(chooseVersion({ "2": 100, "5": 0 }, "anyone")).toBe(2);
  });

  it("takes the version with the largest share as the base, the lowest on a tie", () => {
    expect(baseOf({ "3": 90, "4": 10 })).toBe(3);
    expect(baseOf({ "4": 50, "3": 50 })).toBe(3);
    expect(baseOf({ "1": 20, "7": 80 })).toBe(7);
  });
});
