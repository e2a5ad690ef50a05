import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blockedAddressReason, isBlockedAddress } from "../../../lib/adapters/http/address-guard.ts";

const octet = fc.integer({ min: 0, max: 255 });
const ipv4 = (a: fc.Arbitrary<number>, b: fc.Arbitrary<number> = octet) =>
  fc.tuple(a, b, octet, octet).map((parts) => parts.join("."));
const hex4 = (n: number) => n.toString(16);

describe("blockedAddressReason", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.0.10", "private"],
    ["169.254.169.254", "link-local or metadata"],
    ["100.64.0.1", "shared (CGNAT)"],
    ["100.127.255.255", "shared (CGNAT)"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved or broadcast"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["fc00::1", "unique local (private)"],
    ["fdff:1234::1", "unique local (private)"],
    ["fd00:ec2::254", "metadata"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["ff02::1", "multicast"],
    ["::ffff:127.0.0.1", "IPv4-mapped loopback"],
    ["::ffff:7f00:1", "IPv4-mapped loopback"],
    ["::ffff:169.254.169.254", "IPv4-mapped link-local or metadata"],
    ["::10.0.0.1", "IPv4-mapped private"],
    ["64:ff9b::a9fe:a9fe", "NAT64 link-local or metadata"],
    ["2002:7f00:1::", "6to4 loopback"],
  ])("refuses %s (%s)", (address, reason) => {
    expect(blockedAddressReason(address)).toBe(reason);
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "172.15.255.255",
    "172.32.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "169.253.255.255",
    "11.0.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "2a00::1",
  ])("lets the public address %s through", (address) => {
    expect(blockedAddressReason(address)).toBeUndefined();
  });

  it("refuses what is not an IP address", () => {
    expect(blockedAddressReason("localhost")).toBe("not an IP address");
    expect(blockedAddressReason("")).toBe("not an IP address");
    expect(blockedAddressReason("999.1.1.1")).toBe("not an IP address");
  });

  it("refuses every address of the private, loopback, link-local and CGNAT ranges", () => {
    const guarded = fc.oneof(
      ipv4(fc.constant(10)),
      ipv4(fc.constant(127)),
      ipv4(fc.constant(172), fc.integer({ min: 16, max: 31 })),
      ipv4(fc.constant(192), fc.constant(168)),
      ipv4(fc.constant(169), fc.constant(254)),
      ipv4(fc.constant(100), fc.integer({ min: 64, max: 127 })),
    );
    fc.assert(fc.property(guarded, (address) => isBlockedAddress(address)));
  });

  it("treats an IPv4 address and its IPv4-mapped IPv6 forms alike", () => {
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), ([a, b, c, d]) => {
        const dotted = `${a}.${b}.${c}.${d}`;
        const hex = `::ffff:${hex4((a << 8) | b)}:${hex4((c << 8) | d)}`;
        const blocked = isBlockedAddress(dotted);
        return isBlockedAddress(`::ffff:${dotted}`) === blocked && isBlockedAddress(hex) === blocked;
      }),
    );
  });

  it("refuses every unique-local and link-local IPv6 address", () => {
    const group = fc.integer({ min: 0, max: 0xffff });
    const ula = fc
      .tuple(fc.integer({ min: 0xfc00, max: 0xfdff }), group, group)
      .map(([a, b, c]) => `${hex4(a)}:${hex4(b)}::${hex4(c)}`);
    const linkLocal = fc
      .tuple(fc.integer({ min: 0xfe80, max: 0xfebf }), group)
      .map(([a, b]) => `${hex4(a)}::${hex4(b)}`);
    fc.assert(fc.property(fc.oneof(ula, linkLocal), (address) => isBlockedAddress(address)));
  });
});
