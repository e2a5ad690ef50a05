import { describe, expect, it } from "vitest";
import { durabilityHeaders, handOffRow, summarizeHandOffs } from "../../bench/durability.ts";

describe("the durability benchmark's hand-off figure", () => {
  const samples = [40, 10, 30, 20, 100].map((ms) => ({ fromAcceptedMs: ms, fromRequestMs: ms + 5 }));

  it("summarizes the hand-offs from the 202 and from the request", () => {
    const figure = summarizeHandOffs(samples, 5);
    expect(figure).toEqual({
      handOffs: 5,
      pollWaitSeconds: 5,
      p50Ms: 30,
      p95Ms: 88,
      meanMs: 40,
      maxMs: 100,
      fromRequestP50Ms: 35,
      fromRequestP95Ms: 93,
    });
  });

  it("puts p50, p95 and the mean under the table's own columns, with the poll wait in its label", () => {
    const row = handOffRow(summarizeHandOffs(samples, 5));
    expect(row).toHaveLength(durabilityHeaders.length);
    const at = (header: string) => row[durabilityHeaders.indexOf(header)];
    expect(at("p50 ms")).toBe(30);
    expect(at("p95 ms")).toBe(88);
    expect(at("mean ms")).toBe(40);
    expect(at("p99 ms")).toBeNull();
    expect(String(row[0])).toContain("poll wait 5 s");
    expect(String(row[0])).toContain("5 runs");
  });

  it("refuses an empty sample", () => {
    expect(() => summarizeHandOffs([], 5)).toThrow(RangeError);
  });
});
