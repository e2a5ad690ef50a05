/**
 * The API Lambda (API Gateway HTTP API, payload v2). Wiring only: dependencies are built
 * from the environment once per container, on the first request, and reused after.
 */
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { buildApiDeps } from "../lib/wiring/api.ts";
import { type ApiHandler, createApiHandler } from "../lib/http/handler.ts";
import { loadDeployedConfig } from "../lib/wiring/deployed-config.ts";
import { traced } from "../lib/wiring/tracing.ts";

let apiHandler: ApiHandler | undefined;

export const handler = traced("mova-api", async (event: APIGatewayProxyEventV2, context: Context) => {
  apiHandler ??= createApiHandler(buildApiDeps(await loadDeployedConfig()));
  return apiHandler(event, context);
});
