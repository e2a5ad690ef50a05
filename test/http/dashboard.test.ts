/**
 * GET /dashboard and its script through the real handler: no key needed, a content security
 * policy that allows this origin only, and a clear 404 when the script was not built.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiHandler } from "../../lib/http/handler.ts";
import { type ApiFixture, lambdaContext, startApiFixture, v2Event } from "../support/api-fixture.ts";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";

let api: ApiFixture;

beforeAll(async () => {
  api = await startApiFixture();
});

afterAll(async () => {
  await api?.close();
});

async function get(handler: typeof api.handler, path: string) {
  return (await handler(v2Event("GET", path), lambdaContext)) as APIGatewayProxyStructuredResultV2;
}

describe("GET /dashboard", () => {
  it("serves the page without a key, with a policy that lets it load and call this origin only", async () => {
    const page = await get(api.handler, "/dashboard");
    expect(page.statusCode).toBe(200);
    expect(page.headers?.["content-type"]).toBe("text/html; charset=utf-8");
    const policy = String(page.headers?.["content-security-policy"]);
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(page.headers?.["x-content-type-options"]).toBe("nosniff");
    // Relative, so that it works under a stage path; nothing from another origin.
    expect(page.body).toContain('<script type="module" src="dashboard/app.js"></script>');
    expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it("answers 404 not_found, saying how to build it, when the script was not built", async () => {
    // The wiring reads dashboard.js beside the API's bundle: the sources have none.
    const missing = await get(api.handler, "/dashboard/app.js");
    expect(missing.statusCode).toBe(404);
    const error = JSON.parse(missing.body ?? "{}").error;
    expect(error.code).toBe("not_found");
    expect(error.message).toContain("npm run build");
  });

  it("serves the script it is given as JavaScript", async () => {
    const handler = createApiHandler({ ...api.deps, dashboardScript: async () => "export const page = 1;" });
    const script = await get(handler, "/dashboard/app.js");
    expect(script.statusCode).toBe(200);
    expect(script.headers?.["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(script.body).toBe("export const page = 1;");
    // The data routes still need the key.
    expect((await get(handler, "/documents")).statusCode).toBe(401);
  });
});
