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
import { authenticatedTenant, parseApiKeys } from "./auth.ts";
import type { ApiDeps } from "./deps.ts";
import { createDocumentLoader } from "../services/document-loader.ts";
import { MovaError } from "../errors.ts";
import { errorResponse, toApiFailure } from "./errors.ts";
import { type ApiRequest, jsonResponse, type RouteSpec } from "./route.ts";
import { buildOpenApi } from "./openapi.ts";
import { RUN_EVENTS_OPENAPI_PATH, runEventsOperation } from "./run-events-stream.ts";
import { analysisRoutes } from "./routes-analysis.ts";
import { learningRoutes } from "./routes-learning.ts";
import { documentRoutes } from "./routes-documents.ts";
import { executionRoutes } from "./routes-executions.ts";
import { sessionRoutes } from "./routes-sessions.ts";
import { runControlRoutes } from "./routes-run-control.ts";
import { HealthResponse, issuesOf, PutDocumentRequest, ReadyResponse } from "./schemas.ts";
import { checkReadiness } from "./readiness.ts";
import { assertBoundedInput, jsonDepth } from "../core/input-bounds.ts";
import { MAX_DOCUMENT_DEPTH } from "../mova/validate.ts";
import { dashboardRoutes } from "./routes-dashboard.ts";

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
    {
      method: "GET",
      path: "/ready",
      operationId: "ready",
      summary: "Readiness: each backing service by name, ok, missing or unavailable",
      auth: false,
      responses: {
        200: { description: "every dependency answers", schema: ReadyResponse },
        503: { description: "a dependency is missing or unavailable (named)", schema: ReadyResponse },
      },
      handle: async () => {
        const readiness = await checkReadiness(deps);
        return { status: readiness.status === "ready" ? 200 : 503, body: readiness };
      },
    },
    ...documentRoutes(deps),
    ...sessionRoutes(deps, loader),
    ...executionRoutes(deps, loader),
    ...runControlRoutes(deps, loader),
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
      openApi ??= buildOpenApi(routes, API_INFO, {
        [RUN_EVENTS_OPENAPI_PATH]: { get: runEventsOperation },
      });
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
      tenant = authenticatedTenant(keys, headers);
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
      assertUtf8(headers["content-type"]);
      const text = bodyBytes.toString("utf8");
      if (text.trim() === "") throw new MovaError("invalid_json", "a JSON body is required");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (error) {
        throw new MovaError("invalid_json", `the body is not valid JSON: ${(error as Error).message}`);
      }
      // A document body has the validator's own bounds (depth, size), with its own errors.
      if (route.body !== PutDocumentRequest) {
        assertBoundedBody(json, {
          maxDepth: deps.config.MAX_INPUT_DEPTH,
          maxBytes: deps.config.MAX_INPUT_BYTES,
        });
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
      if (failure.status >= 500) {
        deps.logger.error("request failed", { ...where, error: request.error as Error });
        deps.onServerError?.(failure.code);
      } else deps.logger.info("request rejected", where);
      request.response = errorResponse(failure, { "x-request-id": requestId });
    },
  };

  const api = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(router as never)
    .use(httpHeaderNormalizer())
    .use(errors) as unknown as ApiHandler;
  return withCors(api, deps.config.CORS_ALLOWED_ORIGINS);
}

const CORS_HEADERS = {
  "access-control-allow-methods": "GET, PUT, POST, DELETE, OPTIONS",
  "access-control-allow-headers":
    "authorization, content-type, idempotency-key, prefer, x-api-key, last-event-id",
  "access-control-expose-headers": "location, x-request-id, idempotent-replayed",
  "access-control-max-age": "600",
};

/**
 * CORS for the allowed origins (CORS_ALLOWED_ORIGINS): a preflight OPTIONS is answered 204
 * here (API Gateway answers it itself when its own CORS is configured; the local gateway and
 * tests reach this), and every answer to an allowed origin says so. Another origin gets no
 * CORS headers, so browsers keep its pages from reading the answers.
 */
function withCors(api: ApiHandler, allowed: readonly string[]): ApiHandler {
  const any = allowed.includes("*");
  const originOf = (event: APIGatewayProxyEventV2): string | undefined => {
    const headers = event.headers ?? {};
    const origin = headers.origin ?? headers.Origin;
    if (!origin) return undefined;
    return any || allowed.includes(origin) ? origin : undefined;
  };
  return async (event, context) => {
    const origin = originOf(event);
    const cors: Record<string, string> = origin
      ? { ...CORS_HEADERS, "access-control-allow-origin": any ? "*" : origin, vary: "origin" }
      : {};
    if (event.requestContext?.http?.method === "OPTIONS") return { statusCode: 204, headers: cors };
    const response = await api(event, context);
    if (origin) response.headers = { ...response.headers, ...cors };
    return response;
  };
}

/**
 * JSON bodies are UTF-8 (RFC 8259): a body declared in another charset would be misread, so
 * it is refused (415) rather than decoded as UTF-8.
 */
function assertUtf8(contentType: string | undefined): void {
  if (!contentType) return;
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType)?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8" && charset !== "us-ascii") {
    throw new MovaError("unsupported_media_type", `JSON bodies must be UTF-8, not ${charset.slice(0, 40)}`);
  }
}

/**
 * Every field a run or a record keeps (variables, session data, feedback, …) within the input
 * bounds, before any handler sees it. A field named `document` (a document inside a request)
 * has the validator's own depth bound, so the whole body is bounded a little above it.
 */
function assertBoundedBody(json: unknown, bounds: { maxDepth: number; maxBytes: number }): void {
  const bodyDepthLimit = MAX_DOCUMENT_DEPTH + 2;
  if (jsonDepth(json, bodyDepthLimit) > bodyDepthLimit)
    throw new MovaError("input_too_deep", `the body is nested more than ${bodyDepthLimit} levels deep`);
  if (json === null || typeof json !== "object" || Array.isArray(json)) return;
  for (const [field, value] of Object.entries(json)) {
    if (field !== "document") assertBoundedInput(value, `\`${field}\``, bounds);
  }
}
