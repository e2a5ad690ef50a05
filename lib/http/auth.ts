/**
 * API keys and their tenants. Deployed: `MOVA_API_KEYS` = comma-separated `tenant:sha256hex`
 * of each key (the keys themselves are never configured or logged). Locally:
 * `MOVA_DEV_API_KEY`, which belongs to the tenant `dev`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { MovaError } from "../errors.ts";

const DEV_TENANT = "dev";

interface ApiKeyEntry {
  tenant: string;
  hash: Buffer;
}

const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function sha256Hex(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

/** Reads the key table from the configuration; a malformed entry is a configuration error, not a silent skip. */
export function parseApiKeys(config: { MOVA_API_KEYS?: string; MOVA_DEV_API_KEY?: string }): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  for (const raw of (config.MOVA_API_KEYS ?? "").split(",")) {
    const item = raw.trim();
    if (!item) continue;
    const [tenant, hex, ...rest] = item.split(":");
    if (
      !tenant ||
      !hex ||
      rest.length > 0 ||
      !TENANT_PATTERN.test(tenant) ||
      !/^[0-9a-fA-F]{64}$/.test(hex)
    ) {
      throw new MovaError("invalid_config", "MOVA_API_KEYS entries must be tenant:sha256hex (64 hex digits)");
    }
    entries.push({ tenant, hash: Buffer.from(hex.toLowerCase(), "hex") });
  }
  if (config.MOVA_DEV_API_KEY) {
    entries.push({ tenant: DEV_TENANT, hash: createHash("sha256").update(config.MOVA_DEV_API_KEY).digest() });
  }
  return entries;
}

/** The key sent as `Authorization: Bearer <key>` or `x-api-key`, headers already lower-cased. */
export function presentedKey(headers: Record<string, string | undefined>): string | undefined {
  const authorization = headers.authorization?.trim();
  if (authorization) {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = headers["x-api-key"]?.trim();
  return apiKey || undefined;
}

/** The tenant a key belongs to. Every entry is compared (in constant time) so timing tells nothing. */
export function tenantForKey(entries: readonly ApiKeyEntry[], key: string | undefined): string | undefined {
  if (!key) return undefined;
  const hash = createHash("sha256").update(key, "utf8").digest();
  let tenant: string | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(entry.hash, hash) && tenant === undefined) tenant = entry.tenant;
  }
  return tenant;
}

/** The tenant of the request's API key; 401 `unauthorized` without a known one. */
export function authenticatedTenant(
  entries: readonly ApiKeyEntry[],
  headers: Record<string, string | undefined>,
): string {
  const tenant = tenantForKey(entries, presentedKey(headers));
  if (!tenant)
    throw new MovaError("unauthorized", "a valid API key is required (Authorization: Bearer or x-api-key)");
  return tenant;
}
