import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blockedAddressReason, isBlockedAddress } from "../../../lib/adapters/http/address-guard.ts";

const octet = fc.integer({ min: 0, max: 255 });
const group = fc.integer({ min: 0, max: 0xffff });
const ipv4 = (a: fc.Arbitrary<number>, b: fc.Arbitrary<number> = octet) =>
  fc.tuple(a, b, octet, octet).map((parts) => parts.join("."));
const hex4 = (n: number) => n.toString(16);
/** a.b.c.d as the two hexadecimal IPv6 groups that carry it. */
const v4Groups = (dotted: string) => {
  const [a = 0, b = 0, c = 0, d = 0] = dotted.split(".").map(Number);
  return `${hex4((a << 8) | b)}:${hex4((c << 8) | d)}`;
};

/** One address of each IPv4 range that is refused, with the reason given. */
const REFUSED_IPV4: Array<[address: string, reason: string]> = [
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["10.1.2.3", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.168.0.10", "private"],
  ["169.254.169.254", "link-local"],
  ["100.64.0.1", "shared (CGNAT)"],
  ["100.127.255.255", "shared (CGNAT)"],
  ["192.0.0.8", "reserved"],
  ["198.18.0.1", "reserved"],
  ["198.19.255.255", "reserved"],
  ["192.0.2.1", "reserved"],
  ["198.51.100.7", "reserved"],
  ["203.0.113.200", "reserved"],
  ["192.88.99.1", "reserved"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["240.0.0.1", "reserved"],
  ["255.255.255.254", "reserved"],
  ["255.255.255.255", "broadcast"],
];

/** One address of each IPv6 range that is refused, with the reason given. */
const REFUSED_IPV6: Array<[address: string, reason: string]> = [
  ["::", "unspecified"],
  ["::1", "loopback"],
  ["[::1]", "loopback"],
  ["fc00::1", "unique local"],
  ["fdff:1234::1", "unique local"],
  ["fd00:ec2::254", "unique local"],
  ["fe80::1", "link-local"],
  ["fe80::1%eth0", "link-local"],
  ["febf::1", "link-local"],
  ["fec0::1", "site-local"],
  ["feff::1", "site-local"],
  ["ff02::1", "multicast"],
  ["ff0e::1", "multicast"],
  ["2001:db8::1", "reserved"],
  ["2001:db8:ffff::1", "reserved"],
  ["2001::1", "Teredo"],
  ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"],
  ["64:ff9b::808:808", "NAT64"],
  ["64:ff9b::7f00:1", "NAT64"],
  ["64:ff9b:1::1", "NAT64"],
  ["64:ff9b:1:ffff::a00:1", "NAT64"],
  ["::ffff:0:808:808", "IPv4-translated"],
  ["100::1", "discard"],
  ["2001:2::1", "benchmarking"],
  ["3fff::1", "reserved"],
  ["2002:7f00:1::", "6to4 loopback"],
  ["2002:a00:1::1", "6to4 private"],
  ["2002:a9fe:a9fe::", "6to4 link-local"],
  ["2002:c000:201::", "6to4 reserved"],
  ["2002:e000:1::", "6to4 multicast"],
];

/** Each refused IPv4 address in its IPv4-mapped (dotted and hexadecimal) and IPv4-compatible forms. */
const REFUSED_EMBEDDED: Array<[address: string, reason: string]> = REFUSED_IPV4.flatMap(
  ([address, reason]): Array<[string, string]> => [
    [`::ffff:${address}`, `IPv4-mapped ${reason}`],
    [`::ffff:${v4Groups(address)}`, `IPv4-mapped ${reason}`],
    [`[::FFFF:${v4Groups(address)}]`, `IPv4-mapped ${reason}`],
  ],
).concat([
  // ipaddr.js reads the dotted compatible form as the mapped one: the IPv4 address checked is the same.
  ["::127.0.0.1", "IPv4-mapped loopback"],
  ["::10.0.0.1", "IPv4-mapped private"],
  ["::7f00:1", "IPv4-compatible loopback"],
  ["::a00:1", "IPv4-compatible private"],
  ["::a9fe:a9fe", "IPv4-compatible link-local"],
  ["::6440:1", "IPv4-compatible shared (CGNAT)"],
  ["::c633:6407", "IPv4-compatible reserved"],
  ["::e000:1", "IPv4-compatible multicast"],
  ["::ffff:ffff", "IPv4-compatible broadcast"],
  ["::2", "IPv4-compatible unspecified"],
]);

const PUBLIC = [
  "8.8.8.8",
  "1.1.1.1",
  "9.9.9.9",
  "11.0.0.1",
  "172.15.255.255",
  "172.32.0.0",
  "100.63.255.255",
  "100.128.0.0",
  "169.253.255.255",
  "192.0.1.255",
  "192.0.3.0",
  "192.88.98.255",
  "198.17.255.255",
  "198.20.0.0",
  "198.51.101.0",
  "203.0.112.255",
  "223.255.255.255",
  "2606:4700:4700::1111",
  "2001:4860:4860::8888",
  "2a00:1450:4001:80b::200e",
  "2a00::1",
  "[2606:4700::1]",
  "::ffff:8.8.8.8",
  "::ffff:808:808",
  "::808:808",
  "2002:808:808::1",
];

describe("blockedAddressReason", () => {
  it.each(REFUSED_IPV4)("refuses the IPv4 address %s (%s)", (address, reason) => {
    expect(blockedAddressReason(address)).toBe(reason);
  });

  it.each(REFUSED_IPV6)("refuses the IPv6 address %s (%s)", (address, reason) => {
    expect(blockedAddressReason(address)).toBe(reason);
  });

  it.each(REFUSED_EMBEDDED)("refuses %s, an IPv4 address embedded in IPv6 (%s)", (address, reason) => {
    expect(blockedAddressReason(address)).toBe(reason);
  });

  it.each(PUBLIC)("lets the public address %s through", (address) => {
    expect(blockedAddressReason(address)).toBeUndefined();
  });

  it.each([
    "localhost",
    "",
    "999.1.1.1",
    "127.1",
    "010.0.0.1",
    "0x7f.0.0.1",
    "2130706433",
    "1::2::3",
    "::ffff:1.2.3",
  ])("refuses %j: not an IP address in standard notation", (address) => {
    expect(blockedAddressReason(address)).toBe("not an IP address");
  });

  it("refuses every address of the private, loopback, link-local and CGNAT ranges", () => {
    const guarded = fc.oneof(
      ipv4(fc.constant(10)),
      ipv4(fc.constant(127)),
      ipv4(fc.constant(172), fc.integer({ min: 16, max: 31 })),
      ipv4(fc.constant(192), fc.constant(168)),
      ipv4(fc.constant(169), fc.constant(254)),
      ipv4(fc.constant(100), fc.integer({ min: 64, max: 127 })),
      ipv4(fc.constant(198), fc.integer({ min: 18, max: 19 })),
    );
    fc.assert(fc.property(guarded, (address) => isBlockedAddress(address)));
  });

  it("classifies any IPv4-mapped form as its IPv4 address", () => {
    fc.assert(
      fc.property(fc.ipV4(), (dotted) => {
        const reason = blockedAddressReason(dotted);
        const mapped = reason === undefined ? undefined : `IPv4-mapped ${reason}`;
        expect(blockedAddressReason(`::ffff:${dotted}`)).toBe(mapped);
        expect(blockedAddressReason(`::ffff:${v4Groups(dotted)}`)).toBe(mapped);
        expect(blockedAddressReason(`0:0:0:0:0:ffff:${dotted}`)).toBe(mapped);
      }),
    );
  });

  it("refuses an IPv4-compatible or 6to4 address exactly when its IPv4 address is refused", () => {
    fc.assert(
      fc.property(fc.ipV4(), (dotted) => {
        const blocked = isBlockedAddress(dotted);
        expect(isBlockedAddress(`::${v4Groups(dotted)}`)).toBe(blocked);
        expect(isBlockedAddress(`2002:${v4Groups(dotted)}::1`)).toBe(blocked);
      }),
    );
  });

  it("refuses every NAT64 and Teredo address, whatever IPv4 address it carries", () => {
    const nat64 = fc.ipV4().map((dotted) => `64:ff9b::${dotted}`);
    const localNat64 = fc
      .tuple(group, group, fc.ipV4())
      .map(([a, b, dotted]) => `64:ff9b:1:${hex4(a)}:${hex4(b)}::${v4Groups(dotted)}`);
    const teredo = fc
      .tuple(group, group, group, group)
      .map(([a, b, c, d]) => `2001:0:${hex4(a)}:${hex4(b)}::${hex4(c)}:${hex4(d)}`);
    fc.assert(fc.property(fc.oneof(nat64, localNat64, teredo), (address) => isBlockedAddress(address)));
  });

  it("refuses every unique-local, link-local, site-local, multicast and documentation IPv6 address", () => {
    const prefixed = (min: number, max: number) =>
      fc
        .tuple(fc.integer({ min, max }), group, group)
        .map(([a, b, c]) => `${hex4(a)}:${hex4(b)}::${hex4(c)}`);
    const documentation = fc.tuple(group, group).map(([a, b]) => `2001:db8:${hex4(a)}::${hex4(b)}`);
    fc.assert(
      fc.property(
        fc.oneof(
          prefixed(0xfc00, 0xfdff),
          prefixed(0xfe80, 0xfebf),
          prefixed(0xfec0, 0xfeff),
          prefixed(0xff00, 0xffff),
          documentation,
        ),
        (address) => isBlockedAddress(address),
      ),
    );
  });

  it("classifies every IPv4 and IPv6 address without throwing", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (address) => {
        expect(blockedAddressReason(address)).not.toBe("not an IP address");
      }),
    );
  });
});
