/**
 * Which IP addresses a tool call may not reach: loopback, private, link-local, CGNAT,
 * unspecified, multicast/reserved and cloud metadata addresses, in IPv4 and IPv6 (including
 * IPv4 embedded in IPv6 by mapping, NAT64 or 6to4), so a document cannot probe the network
 * the engine runs in.
 */
import { isIPv4, isIPv6 } from "node:net";

/** Why an address is refused, or undefined when it is a public address. */
export function blockedAddressReason(address: string): string | undefined {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  if (isIPv4(bare)) return ipv4Reason(parseIPv4(bare));
  const withoutZone = bare.split("%")[0] ?? bare;
  if (isIPv6(withoutZone)) return ipv6Reason(parseIPv6(withoutZone));
  return "not an IP address";
}

export function isBlockedAddress(address: string): boolean {
  return blockedAddressReason(address) !== undefined;
}

const IPV4_RANGES: Array<[base: string, prefix: number, reason: string]> = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared (CGNAT)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local or metadata"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved or broadcast"],
].map(([base, prefix, reason]) => [base as string, prefix as number, reason as string]);

const IPV4_BLOCKS = IPV4_RANGES.map(([base, prefix, reason]) => ({
  network: parseIPv4(base),
  mask: prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0,
  reason,
}));

function ipv4Reason(value: number): string | undefined {
  for (const block of IPV4_BLOCKS) {
    if ((value & block.mask) >>> 0 === block.network) return block.reason;
  }
  return undefined;
}

function parseIPv4(text: string): number {
  return text.split(".").reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

/** Eight 16-bit groups. */
function parseIPv6(text: string): number[] {
  let source = text.toLowerCase();
  // A trailing dotted IPv4 part becomes two groups.
  const lastColon = source.lastIndexOf(":");
  const tail = source.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = parseIPv4(tail);
    source = `${source.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head = "", rest] = source.split("::");
  const headGroups = head ? head.split(":") : [];
  const restGroups = rest === undefined ? [] : rest ? rest.split(":") : [];
  const missing = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  return [...headGroups, ...Array<string>(missing).fill("0"), ...restGroups].map((group) =>
    Number.parseInt(group, 16),
  );
}

function embeddedIPv4(groups: number[], at: number): number {
  return (((groups[at] ?? 0) << 16) | (groups[at + 1] ?? 0)) >>> 0;
}

function ipv6Reason(groups: number[]): string | undefined {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = groups;
  const firstFiveZero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (firstFiveZero && g5 === 0 && g6 === 0 && g7 === 0) return "unspecified";
  if (firstFiveZero && g5 === 0 && g6 === 0 && g7 === 1) return "loopback";
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible) reach the IPv4 address.
  if (firstFiveZero && (g5 === 0xffff || g5 === 0))
    return prefixed("IPv4-mapped", ipv4Reason(embeddedIPv4(groups, 6)));
  // ::ffff:0:a.b.c.d (SIIT translated).
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) {
    return prefixed("IPv4-translated", ipv4Reason(embeddedIPv4(groups, 6)));
  }
  // NAT64 well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    return prefixed("NAT64", ipv4Reason(embeddedIPv4(groups, 6)));
  }
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return "NAT64 local-use";
  // 6to4 2002:V4ADDR::/48.
  if (g0 === 0x2002) return prefixed("6to4", ipv4Reason(embeddedIPv4(groups, 1)));
  if ((g0 & 0xfe00) === 0xfc00) return g0 === 0xfd00 && g1 === 0x0ec2 ? "metadata" : "unique local (private)";
  if ((g0 & 0xffc0) === 0xfe80) return "link-local";
  if ((g0 & 0xffc0) === 0xfec0) return "site-local";
  if ((g0 & 0xff00) === 0xff00) return "multicast";
  if (g0 === 0x100 && g1 === 0 && g2 === 0 && g3 === 0) return "discard-only";
  return undefined;
}

function prefixed(kind: string, reason: string | undefined): string | undefined {
  return reason === undefined ? undefined : `${kind} ${reason}`;
}
