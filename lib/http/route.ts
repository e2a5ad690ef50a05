/**
 * The route abstraction shared by the router and the OpenAPI generator: each route names its
 * parameter, query, body and response schemas once, and the same schemas validate requests.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type { z } from "zod";

type Method = "GET" | "PUT" | "POST" | "DELETE";

export interface ApiRequest<TBody = unknown, TQuery = unknown> {
  tenant: string;
  params: Record<string, string>;
  query: TQuery;
  body: TBody;
  headers: Record<string, string | undefined>;
  requestId: string;
  logger: Logger;
  event: APIGatewayProxyEventV2;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  /** A body sent as it is (the dashboard's page and script), with its own content-type header. */
  text?: string;
  headers?: Record<string, string>;
}

interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
}

export interface RouteSpec {
  method: Method;
  /** API Gateway style: `/documents/{name}`. */
  path: string;
  operationId: string;
  summary: string;
  /** False for /health and /openapi.json only. */
  auth: boolean;
  params?: Record<string, z.ZodType>;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Headers the route reads (documented only). */
  headers?: Array<{ name: string; description: string; required?: boolean }>;
  responses: Record<number, ResponseSpec>;
  // biome-ignore lint/suspicious/noExplicitAny: each route narrows its own request type
  handle(request: ApiRequest<any, any>): Promise<ApiResponse>;
}

export function jsonResponse(response: ApiResponse): APIGatewayProxyStructuredResultV2 {
  if (response.text !== undefined)
    return { statusCode: response.status, headers: { ...response.headers }, body: response.text };
  if (response.body === undefined) return { statusCode: response.status, headers: { ...response.headers } };
  return {
    statusCode: response.status,
    headers: { "content-type": "application/json", ...response.headers },
    body: JSON.stringify(response.body),
  };
}
