/**
 * GET /dashboard: one HTML page and its script (GET /dashboard/app.js). Neither needs an API
 * key: the page holds no data. It asks for the key once, keeps it in the tab's
 * sessionStorage, and reads everything through the API with `Authorization: Bearer <key>`,
 * so every figure it shows is scoped to the key's tenant like any other API call.
 *
 * The content security policy allows nothing but this origin: the page loads no script,
 * style or font from elsewhere, and the script can only call this API.
 */
import { MovaError } from "../errors.ts";
import type { ApiDeps } from "./deps.ts";
import type { RouteSpec } from "./route.ts";

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** The page: a shell the script fills in. Relative URLs keep it working under an API Gateway stage path. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MOVA dashboard</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
  header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: center; }
  header h1 { font-size: 18px; margin: 0; flex: 1; }
  main { display: grid; grid-template-columns: 240px 1fr; gap: 16px; padding: 16px; }
  nav, section { background: #fff; border-radius: 6px; padding: 12px 16px; box-shadow: 0 1px 2px #0002; }
  nav ul { list-style: none; padding: 0; margin: 0; }
  nav li { margin: 2px 0; }
  nav button { all: unset; cursor: pointer; padding: 2px 6px; border-radius: 4px; display: block; }
  nav button[aria-current="true"] { background: #dde6ff; }
  .doc { font-weight: 600; margin-top: 8px; }
  .content { display: grid; gap: 16px; min-width: 0; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; }
  td, th { padding: 2px 10px 2px 0; text-align: left; }
  .better { color: #0a7a35; font-weight: 600; } .worse { color: #b3261e; font-weight: 600; } .inconclusive { color: #77600a; font-weight: 600; }
  pre { background: #f0f1f4; padding: 8px; overflow: auto; font-size: 12px; }
  .error { color: #b3261e; }
  .muted { color: #667; }
  svg text { font: 11px system-ui, sans-serif; }
  #login { max-width: 420px; margin: 60px auto; }
  .recommendation { border-top: 1px solid #e3e5ea; padding-top: 8px; margin-top: 8px; }
</style>
</head>
<body>
<header><h1>MOVA dashboard</h1><span id="who" class="muted"></span></header>
<div id="app"><p class="muted" style="padding:20px">Loading…</p></div>
<script type="module" src="dashboard/app.js"></script>
</body>
</html>
`;

export function dashboardRoutes(deps: ApiDeps): RouteSpec[] {
  return [
    {
      method: "GET",
      path: "/dashboard",
      operationId: "dashboard",
      summary: "The dashboard: a page that reads the API with the key it asks for (no key to load it)",
      auth: false,
      responses: { 200: { description: "the HTML page" } },
      handle: async () => ({
        status: 200,
        text: DASHBOARD_HTML,
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-cache",
          ...SECURITY_HEADERS,
        },
      }),
    },
    {
      method: "GET",
      path: "/dashboard/app.js",
      operationId: "dashboardScript",
      summary: "The dashboard's script",
      auth: false,
      responses: {
        200: { description: "the JavaScript module" },
        404: { description: "not_found: the script was not built (npm run build)" },
      },
      handle: async () => {
        if (!deps.dashboardScript)
          throw new MovaError("not_found", "the dashboard's script is not built (npm run build)");
        return {
          status: 200,
          text: await deps.dashboardScript(),
          headers: {
            "content-type": "text/javascript; charset=utf-8",
            "cache-control": "no-cache",
            ...SECURITY_HEADERS,
          },
        };
      },
    },
  ];
}
