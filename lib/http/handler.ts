/**
 * The API's Lambda handler (API Gateway HTTP API, payload v2): middy with header
 * normalisation, the router, and one error middleware that gives every failure the shape
 * `{ "error": { "code", "message", "details"? } }`. Deps are injected so that tests and the
 * local gateway run exactly this handler against local stores.
 */
import middy from "@middy/core";
import httpHeaderNormalizer from "@middy/http-header-normalizer";
import httpRouterHandler from "@middy/http-router";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { parseApiKeys, presentedKey, tenantForKey } from "./auth.ts";
import type { ApiDeps } from "./deps.ts";
import { createDocumentLoader } from "../services/document-loader.ts";
import { MovaError } from "../errors.ts";
import { errorResponse, toApiFailure } from "./errors.ts";
import { type ApiRequest, jsonResponse, type RouteSpec } from "./route.ts";
import { buildOpenApi } from "./openapi.ts";
import { analysisRoutes } from "./routes-analysis.ts";
import { learningRoutes } from "./routes-learning.ts";
import { documentRoutes } from "./routes-documents.ts";
import { executionRoutes } from "./routes-executions.ts";
import { sessionRoutes } from "./routes-sessions.ts";
import { dashboardRoutes } from "./routes-dashboard.ts";
import { HealthResponse, issuesOf } from "./schemas.ts";

export type ApiHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

const API_INFO = { title: "MOVA Serverless API", version: "1.0.0" };

function apiRoutes(deps: ApiDeps): RouteSpec[] {
  const loader = createDocumentLoader(deps.documents);
  const routes: RouteSpec[] = [
    {
      method: "GET",
      path: "/health",
      operationId: "health",
      summary: "Liveness (no backing service is called)",
      auth: false,
      responses: { 200: { description: "up", schema: HealthResponse } },
      handle: async () => ({
        status: 200,
        body: { status: "ok", time: new Date(deps.clock.now()).toISOString() },
      }),
    },
    ...documentRoutes(deps),
    ...sessionRoutes(deps, loader),
    ...executionRoutes(deps, loader),
    ...analysisRoutes(deps, loader),
    ...learningRoutes(deps, loader),
    ...dashboardRoutes(deps),
  ];
  let openApi: unknown;
  routes.splice(1, 0, {
    method: "GET",
    path: "/openapi.json",
    operationId: "openApi",
    summary: "This OpenAPI 3.1 document",
    auth: false,
    responses: { 200: { description: "the OpenAPI document" } },
    handle: async () => {
      openApi ??= buildOpenApi(routes, API_INFO);
      return { status: 200, body: openApi };
    },
  });
  return routes;
}

export function createApiHandler(deps: ApiDeps): ApiHandler {
  const keys = parseApiKeys(deps.config);
  const routes = apiRoutes(deps);

  const wrap = (route: RouteSpec) => async (event: APIGatewayProxyEventV2) => {
    const requestId = event.requestContext?.requestId ?? "unknown";
    const logger = deps.logger.createChild({
      persistentKeys: { requestId, route: `${route.method} ${route.path}` },
    });
    const headers = (event.headers ?? {}) as Record<string, string | undefined>;

    const rawBody = event.body ?? "";
    const bodyBytes = event.isBase64Encoded ? Buffer.from(rawBody, "base64") : Buffer.from(rawBody, "utf8");
    if (bodyBytes.byteLength > deps.config.MAX_BODY_BYTES) {
      throw new MovaError("payload_too_large", `the body is over ${deps.config.MAX_BODY_BYTES} bytes`);
    }

    let tenant = "";
    if (route.auth) {
      const found = tenantForKey(keys, presentedKey(headers));
      if (!found)
        throw new MovaError(
          "unauthorized",
          "a valid API key is required (Authorization: Bearer or x-api-key)",
        );
      tenant = found;
      logger.appendPersistentKeys({ tenant });
    }

    const params: Record<string, string> = {};
    for (const [name, schema] of Object.entries(route.params ?? {})) {
      let value: string;
      try {
        value = decodeURIComponent(event.pathParameters?.[name] ?? "");
      } catch {
        throw new MovaError("invalid_request", `path parameter ${name} is not valid URL encoding`);
      }
      const parsed = schema.safeParse(value);
      if (!parsed.success)
        throw new MovaError("invalid_request", `invalid path parameter ${name}`, {
          details: issuesOf(parsed.error),
        });
      params[name] = parsed.data as string;
    }

    let query: unknown = event.queryStringParameters ?? {};
    if (route.query) {
      const parsed = route.query.safeParse(query);
      if (!parsed.success)
        throw new MovaError("invalid_request", "invalid query parameters", {
          details: issuesOf(parsed.error),
        });
      query = parsed.data;
    }

    let body: unknown;
    if (route.body) {
      const text = bodyBytes.toString("utf8");
      if (text.trim() === "") throw new MovaError("invalid_json", "a JSON body is required");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (error) {
        throw new MovaError("invalid_json", `the body is not valid JSON: ${(error as Error).message}`);
      }
      const parsed = route.body.safeParse(json);
      if (!parsed.success)
        throw new MovaError("invalid_request", "the body does not match the request schema", {
          details: issuesOf(parsed.error),
        });
      body = parsed.data;
    }

    const request: ApiRequest = { tenant, params, query, body, headers, requestId, logger, event };
    const response = await route.handle(request);
    logger.info("request handled", { status: response.status });
    const result = jsonResponse(response);
    result.headers = { ...result.headers, "x-request-id": requestId };
    return result;
  };

  const router = httpRouterHandler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(
    routes.map((route) => ({ method: route.method, path: route.path, handler: wrap(route) })),
  );

  const errors: middy.MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> = {
    onError: (request) => {
      const failure = toApiFailure(request.error);
      const requestId = request.event.requestContext?.requestId ?? "unknown";
      const where = { requestId, status: failure.status, code: failure.code };
      if (failure.status >= 500)
        deps.logger.error("request failed", { ...where, error: request.error as Error });
      else deps.logger.info("request rejected", where);
      request.response = errorResponse(failure, { "x-request-id": requestId });
    },
  };

  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(router as never)
    .use(httpHeaderNormalizer())
    .use(errors) as unknown as ApiHandler;
}
