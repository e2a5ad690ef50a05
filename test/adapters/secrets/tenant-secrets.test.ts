import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalTenantSecrets } from "../../../lib/adapters/secrets/local-secrets.ts";
import { createSsmTenantSecrets } from "../../../lib/adapters/secrets/ssm-secrets.ts";
import { isMovaError } from "../../../lib/errors.ts";
import { type SsmDouble, startSsmDouble } from "../../support/ssm-double.ts";

describe("local tenant secrets", () => {
  const env = {
    MOVA_SECRET_acme_TOKEN: "acme-token",
    MOVA_SECRET_globex_TOKEN: "globex-token",
    MOVA_SECRET_TOKEN: "unscoped",
    MOVA_SECRET_a_b_C: "ambiguous",
  };

  it("gives each tenant only its own MOVA_SECRET_<TENANT>_<NAME>", async () => {
    const secrets = createLocalTenantSecrets({ env });
    expect((await secrets.forTenant("acme")).get("TOKEN")).toBe("acme-token");
    expect((await secrets.forTenant("globex")).get("TOKEN")).toBe("globex-token");
    expect((await secrets.forTenant("initech")).get("TOKEN")).toBeUndefined();
    // Another tenant's secret is not a name of this one's.
    expect((await secrets.forTenant("acme")).get("globex_TOKEN")).toBeUndefined();
  });

  it("serves tenants whose name holds `_` from their file only (an env name would be ambiguous)", async () => {
    const secrets = createLocalTenantSecrets({ env });
    expect((await secrets.forTenant("a_b")).get("C")).toBeUndefined();
    expect((await secrets.forTenant("a")).get("b_C")).toBe("ambiguous");
  });

  it("reads <dir>/<tenant>.json, over the environment, and refuses tenant names that are paths", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mova-secrets-"));
    try {
      await writeFile(join(dir, "acme.json"), JSON.stringify({ TOKEN: "from-file", N: 5 }));
      await writeFile(join(dir, "a_b.json"), JSON.stringify({ C: "file-c" }));
      const secrets = createLocalTenantSecrets({ env, directory: dir });
      expect((await secrets.forTenant("acme")).get("TOKEN")).toBe("from-file");
      expect((await secrets.forTenant("acme")).get("N")).toBeUndefined();
      expect((await secrets.forTenant("a_b")).get("C")).toBe("file-c");
      expect((await secrets.forTenant("../acme")).get("TOKEN")).toBeUndefined();
      await writeFile(join(dir, "broken.json"), "{");
      const failure = await secrets.forTenant("broken").catch((error: unknown) => error);
      expect(isMovaError(failure, "secrets_unavailable")).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("SSM tenant secrets (Powertools Parameters against SSM's protocol on loopback)", () => {
  let ssm: SsmDouble;
  let client: SSMClient;
  let calls: SsmDouble["calls"];
  beforeAll(async () => {
    ssm = await startSsmDouble({
      "/mova/test/tenants/acme/TOKEN": "acme-ssm",
      "/mova/test/tenants/acme/nested/X": "not a secret of acme",
      "/mova/test/tenants/globex/TOKEN": "globex-ssm",
    });
    calls = ssm.calls;
    client = new SSMClient({
      region: "eu-west-1",
      endpoint: ssm.url,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
  });
  afterAll(() => ssm.close());

  it("reads the tenant's own path, decrypted, not recursive, cached", async () => {
    const secrets = createSsmTenantSecrets({ client, basePath: "/mova/test/tenants/", maxAgeSeconds: 60 });
    expect((await secrets.forTenant("acme")).get("TOKEN")).toBe("acme-ssm");
    expect((await secrets.forTenant("globex")).get("TOKEN")).toBe("globex-ssm");
    expect((await secrets.forTenant("acme")).get("nested")).toBeUndefined();
    expect(calls).toEqual([
      { path: "/mova/test/tenants/acme", decrypt: true, recursive: false },
      { path: "/mova/test/tenants/globex", decrypt: true, recursive: false },
    ]);
  });

  it("never asks for a path built from a malformed tenant", async () => {
    const before = calls.length;
    const secrets = createSsmTenantSecrets({ client, basePath: "/mova/test/tenants" });
    expect((await secrets.forTenant("../globex")).get("TOKEN")).toBeUndefined();
    expect(calls.length).toBe(before);
  });

  it("fails with secrets_unavailable, naming no path, when SSM cannot be reached", async () => {
    const dead = new SSMClient({
      region: "eu-west-1",
      endpoint: "http://127.0.0.1:9",
      maxAttempts: 1,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    const secrets = createSsmTenantSecrets({ client: dead, basePath: "/mova/test/tenants" });
    const failure = await secrets.forTenant("acme").catch((error: unknown) => error);
    expect(isMovaError(failure, "secrets_unavailable")).toBe(true);
    expect((failure as Error).message).not.toContain("/mova/test");
  });
});
