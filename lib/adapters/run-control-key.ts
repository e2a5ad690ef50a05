/** What the Redis and the in-process run control stores share: how a run is named in them. */
import type { RunMessage } from "../ports.ts";

export const DEFAULT_RUN_CONTROL_PREFIX = "mova:runctl:";

/** A run as a sorted-set member: tenant and id URI-encoded, so neither can forge the other. */
export function memberOf(message: RunMessage): string {
  return `${encodeURIComponent(message.tenant)}:${encodeURIComponent(message.executionId)}`;
}

export function messageOf(member: string): RunMessage | undefined {
  const [tenant, executionId, extra] = member.split(":");
  if (!tenant || !executionId || extra !== undefined) return undefined;
  return { tenant: decodeURIComponent(tenant), executionId: decodeURIComponent(executionId) };
}
