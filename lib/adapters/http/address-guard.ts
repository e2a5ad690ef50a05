/**
 * Which IP addresses a tool call may not reach: everything but public unicast addresses, so a
 * document cannot probe the network the engine runs in. The classification is ipaddr.js's
 * `range()` (loopback, private, link-local and cloud metadata, CGNAT, benchmarking, TEST-NETs,
 * multicast, reserved, unspecified, broadcast, documentation, unique-local, site-local,
 * Teredo, NAT64, …): only its `unicast` passes. IPv4 embedded in IPv6 (mapped, the deprecated
 * compatible form, 6to4) is classified as the IPv4 address it reaches.
 */
import { isIPv4, isIPv6 } from "node:net";
import ipaddr from "ipaddr.js";

/** The name ipaddr.js gives addresses outside every special range. */
const PUBLIC = "unicast";

/** Readable names for ipaddr.js's range names; a range not listed keeps its own name. */
const RANGE_LABELS: Record<string, string> = {
  linkLocal: "link-local",
  carrierGradeNat: "shared (CGNAT)",
  uniqueLocal: "unique local",
  deprecatedSiteLocal: "site-local",
  rfc6052: "NAT64",
  rfc6145: "IPv4-translated",
  "6to4": "6to4",
  teredo: "Teredo",
  as112: "AS112",
  as112v6: "AS112",
  amt: "AMT",
  deprecatedOrchid: "ORCHID",
  orchid2: "ORCHIDv2",
  droneRemoteIdProtocolEntityTags: "DET",
  segmentRouting: "segment routing",
};

/** Why an address is refused, or undefined when it is a public address. */
export function blockedAddressReason(address: string): string | undefined {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  // Only the standard notations are addresses here (node:net's strict check): ipaddr.js also
  // reads forms like 010.0.0.1 (octal) or 127.1 that a resolver or a URL never hands us.
  const withoutZone = bare.split("%")[0] ?? bare;
  try {
    if (isIPv4(bare)) return ipv4Reason(ipaddr.IPv4.parse(bare));
    if (isIPv6(withoutZone)) return ipv6Reason(ipaddr.IPv6.parse(withoutZone));
  } catch {
    // An address the two parsers disagree on is refused, never let through.
  }
  return "not an IP address";
}

export function isBlockedAddress(address: string): boolean {
  return blockedAddressReason(address) !== undefined;
}

function ipv4Reason(address: ipaddr.IPv4): string | undefined {
  return reasonFor(address.range());
}

function ipv6Reason(address: ipaddr.IPv6): string | undefined {
  const range: string = address.range();
  // ::ffff:a.b.c.d reaches the IPv4 address (ipaddr.js also reads the dotted ::a.b.c.d so).
  if (range === "ipv4Mapped") return embedded("IPv4-mapped", address.toIPv4Address());
  // 2002:V4ADDR::/48 is routed to the 6to4 relay of the IPv4 address it embeds.
  if (range === "6to4") return embedded("6to4", new ipaddr.IPv4(address.toByteArray().slice(2, 6)));
  // ::a.b.c.d (deprecated IPv4-compatible; ipaddr.js calls the rest of ::/96 unicast).
  if (range === PUBLIC && address.parts.slice(0, 6).every((part) => part === 0)) {
    return embedded("IPv4-compatible", new ipaddr.IPv4(address.toByteArray().slice(12)));
  }
  return reasonFor(range);
}

function embedded(kind: string, address: ipaddr.IPv4): string | undefined {
  const reason = ipv4Reason(address);
  return reason === undefined ? undefined : `${kind} ${reason}`;
}

function reasonFor(range: string): string | undefined {
  return range === PUBLIC ? undefined : (RANGE_LABELS[range] ?? range);
}
