import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseApiKeys, presentedKey, sha256Hex, tenantForKey } from "../../lib/http/auth.ts";

describe("API keys", () => {
  it("maps each configured key to its tenant and nothing else", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 5 }),
        fc.string({ maxLength: 40 }),
        (keys, probe) => {
          const entries = parseApiKeys({
            MOVA_API_KEYS: keys.map((key, i) => `t${i}:${sha256Hex(key)}`).join(","),
          });
          keys.forEach((key, i) => {
            expect(tenantForKey(entries, key)).toBe(`t${i}`);
          });
          if (!keys.includes(probe)) expect(tenantForKey(entries, probe)).toBeUndefined();
        },
      ),
    );
  });

  it("gives the dev key the tenant dev and rejects malformed entries", () => {
    expect(tenantForKey(parseApiKeys({ MOVA_DEV_API_KEY: "local" }), "local")).toBe("dev");
    expect(tenantForKey(parseApiKeys({}), "anything")).toBeUndefined();
    expect(tenantForKey(parseApiKeys({ MOVA_DEV_API_KEY: "local" }), undefined)).toBeUndefined();
    for (const bad of ["acme", "acme:xyz", `a:b:${sha256Hex("k")}`, `bad tenant:${sha256Hex("k")}`]) {
      expect(() => parseApiKeys({ MOVA_API_KEYS: bad })).toThrow(
        expect.objectContaining({ code: "invalid_config" }),
      );
    }
  });

  it("reads Bearer and x-api-key headers", () => {
    expect(presentedKey({ authorization: "Bearer abc" })).toBe("abc");
    expect(presentedKey({ authorization: "bearer   abc " })).toBe("abc");
    expect(presentedKey({ "x-api-key": "xyz" })).toBe("xyz");
    expect(presentedKey({ authorization: "Basic abc" })).toBeUndefined();
    expect(presentedKey({})).toBeUndefined();
  });
});
