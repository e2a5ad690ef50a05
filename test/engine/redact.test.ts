import { describe, expect, it } from "vitest";
import { REDACTED, SecretRedactor } from "../../lib/engine/redact.ts";

describe("SecretRedactor", () => {
  const secret = "s3cr3t-T0ken-value";
  const redactor = new SecretRedactor();
  redactor.addSecret("TOKEN", secret);

  it.each([
    ["as written", secret],
    ["reversed", [...secret].reverse().join("")],
    ["base64", Buffer.from(secret).toString("base64")],
    ["base64url", Buffer.from(secret).toString("base64url")],
    ["hex", Buffer.from(secret).toString("hex")],
    ["URL-encoded", encodeURIComponent(secret)],
  ])("redacts a tool's echo of the secret %s", (_form, echoed) => {
    expect(redactor.redact({ echo: `x ${echoed} y` })).toEqual({ echo: `x ${REDACTED} y` });
  });

  it("does not redact the transformed forms of a short value (they would match ordinary text)", () => {
    const short = new SecretRedactor();
    short.addSecret("PIN", "abc");
    expect(short.redact("cba YWJj")).toBe("cba YWJj");
    expect(short.redact("abc")).toBe(REDACTED);
  });
});
