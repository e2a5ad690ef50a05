import { MovaError } from "../../lib/errors.ts";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../lib/adapters/clock.ts";

describe("systemClock", () => {
  it("tells wall time", () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it("sleeps about as long as asked", async () => {
    const started = performance.now();
    await systemClock.sleep(60);
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
  });

  it("ends a sleep early with cancelled when the signal aborts", async () => {
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(), 20);
    const error = await systemClock.sleep(5_000, controller.signal).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MovaError);
    expect((error as MovaError).code).toBe("cancelled");
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("refuses to sleep on an already aborted signal", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(systemClock.sleep(5_000, controller.signal)).rejects.toMatchObject({ code: "cancelled" });
  });
});
