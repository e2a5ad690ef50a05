/** Signed callback tokens: what a token proves, and every way one is refused. */
import { describe, expect, it } from "vitest";
import { callbackUrlMaker, signCallback, verifyCallback } from "../../lib/services/callback-signature.ts";

const SECRET = "s".repeat(32);
const claims = { tenant: "acme", executionId: "exec-1", event: "approved", expiresAt: 2_000 };

describe("callback tokens", () => {
  it("a genuine token gives back its claims until it expires", () => {
    const token = signCallback(claims, SECRET, "n1");
    expect(verifyCallback(token, SECRET, 1_999)).toEqual({ ...claims, nonce: "n1" });
    expect(() => verifyCallback(token, SECRET, 2_000)).toThrow(
      expect.objectContaining({ code: "callback_expired" }),
    );
  });

  it("a token with other claims, another key or a cut signature is callback_invalid", () => {
    const token = signCallback(claims, SECRET, "n1");
    const [, signature] = token.split(".");
    const otherRun = signCallback({ ...claims, executionId: "exec-2" }, SECRET, "n1").split(".")[0];
    for (const forged of [
      `${otherRun}.${signature}`,
      signCallback(claims, "t".repeat(32), "n1"),
      token.slice(0, -3),
      `${token}.x`,
      "",
      "x".repeat(5_000),
    ]) {
      expect(() => verifyCallback(forged, SECRET, 0), forged.slice(0, 20)).toThrow(
        expect.objectContaining({ code: "callback_invalid", status: 403 }),
      );
    }
  });

  it("every URL made is different (each is used once), and none without a secret and a base URL", () => {
    const make = callbackUrlMaker({ secret: SECRET, baseUrl: "https://api.example/" }, claims);
    const first = make?.("approved");
    expect(first?.startsWith("https://api.example/callbacks/")).toBe(true);
    expect(make?.("approved")).not.toBe(first);
    expect(callbackUrlMaker({ baseUrl: "https://api.example" }, claims)).toBeUndefined();
    expect(callbackUrlMaker({ secret: SECRET }, claims)).toBeUndefined();
  });
});
