/**
 * Each tenant's secrets on a developer's machine: the environment variable
 * `MOVA_SECRET_<TENANT>_<NAME>`, or a JSON file per tenant, `<MOVA_SECRETS_DIR>/<tenant>.json`
 * (`{ "NAME": "value" }`), the file winning over the environment. Tenants whose name holds
 * `_` read only the file: `MOVA_SECRET_a_b_C` could otherwise be tenant `a`'s `b_C` or tenant
 * `a_b`'s `C`, and one tenant would read another's.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { StoreUnavailableError } from "../../errors.ts";
import type { SecretsPort, TenantSecretsPort } from "../../ports.ts";

/** What a secret's name may be (the part after `secrets.`). */
export const SECRET_NAME = /^[A-Za-z0-9_]{1,128}$/;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** A SecretsPort over a plain map; only well-formed names are read. */
export function secretsFromMap(values: ReadonlyMap<string, string>): SecretsPort {
  return {
    get(name) {
      if (!SECRET_NAME.test(name)) return undefined;
      const value = values.get(name);
      return value === undefined || value === "" ? undefined : value;
    },
  };
}

export interface LocalSecretsOptions {
  env?: NodeJS.ProcessEnv;
  /** `MOVA_SECRETS_DIR`: a `<tenant>.json` per tenant. */
  directory?: string;
}

export function createLocalTenantSecrets(options: LocalSecretsOptions = {}): TenantSecretsPort {
  const env = options.env ?? process.env;
  return {
    async forTenant(tenant) {
      const values = new Map<string, string>();
      if (!TENANT.test(tenant)) return secretsFromMap(values);
      if (!tenant.includes("_")) {
        const prefix = `MOVA_SECRET_${tenant}_`;
        for (const [key, value] of Object.entries(env)) {
          if (key.startsWith(prefix) && value !== undefined) values.set(key.slice(prefix.length), value);
        }
      }
      if (options.directory) {
        for (const [name, value] of Object.entries(await readTenantFile(options.directory, tenant)))
          values.set(name, value);
      }
      return secretsFromMap(values);
    },
  };
}

async function readTenantFile(directory: string, tenant: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(join(directory, `${tenant}.json`), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new StoreUnavailableError("secrets_unavailable", "the tenant's secrets file cannot be read");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new StoreUnavailableError("secrets_unavailable", "the tenant's secrets file is not JSON");
  }
  const out: Record<string, string> = {};
  if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
    for (const [name, value] of Object.entries(parsed)) if (typeof value === "string") out[name] = value;
  }
  return out;
}
