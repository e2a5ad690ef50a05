/**
 * Each tenant's secrets, deployed: SSM SecureString parameters under the tenant's own path,
 * `<SECRETS_SSM_PATH>/<tenant>/<NAME>` (e.g. `/mova/prod/tenants/acme/WEATHER_KEY`), read by
 * Powertools Parameters (decrypted, cached for `maxAgeSeconds`). The function's role may read
 * only that path. A tenant reads its own path and nothing above or beside it.
 */
import { SSMProvider } from "@aws-lambda-powertools/parameters/ssm";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { StoreUnavailableError } from "../../errors.ts";
import type { TenantSecretsPort } from "../../ports.ts";
import { secretsFromMap } from "./local-secrets.ts";

const TENANT = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface SsmSecretsOptions {
  client: SSMClient;
  /** The parent of every tenant's path, without a trailing slash: `/mova/<stage>/tenants`. */
  basePath: string;
  /** How long values are kept before SSM is asked again (s). */
  maxAgeSeconds?: number;
}

export function createSsmTenantSecrets(options: SsmSecretsOptions): TenantSecretsPort {
  const provider = new SSMProvider({ awsSdkV3Client: options.client });
  const base = options.basePath.replace(/\/+$/, "");
  const maxAge = options.maxAgeSeconds ?? 300;
  return {
    async forTenant(tenant) {
      if (!TENANT.test(tenant)) return secretsFromMap(new Map());
      let values: Record<string, unknown> | undefined;
      try {
        // Not recursive: a tenant's path holds its secrets; nothing nested is a secret.
        values = (await provider.getMultiple(`${base}/${tenant}`, {
          decrypt: true,
          recursive: false,
          maxAge,
        })) as Record<string, unknown> | undefined;
      } catch {
        // The SDK's message can name the parameter path and the account: say neither.
        throw new StoreUnavailableError("secrets_unavailable", "the tenant's secrets cannot be read");
      }
      const map = new Map<string, string>();
      for (const [name, value] of Object.entries(values ?? {}))
        if (typeof value === "string") map.set(name, value);
      return secretsFromMap(map);
    },
  };
}
