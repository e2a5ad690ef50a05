/**
 * The OpenAPI 3.1 document of the API, generated from the route table: the same zod schemas
 * that validate each request describe it here (zod 4 `z.toJSONSchema`, JSON Schema 2020-12,
 * which OpenAPI 3.1 uses as is).
 */
import * as z from "zod";
import type { RouteSpec } from "./route.ts";
import { ErrorResponse } from "./schemas.ts";

type JsonSchema = Record<string, unknown>;

const ERROR_RESPONSES: Record<number, string> = {
  400: "invalid_json or invalid_request",
  401: "unauthorized: missing or unknown API key",
  404: "not_found (also for another tenant's resources)",
  413: "payload_too_large: the body is over MAX_BODY_BYTES",
  503: "a backing service is unavailable: session_store_unavailable or history_unavailable",
};

function schemaOf(
  schema: z.ZodType,
  io: "input" | "output",
  components: Record<string, JsonSchema>,
): JsonSchema {
  const generated = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" });
  // Named schemas come back as `$defs` entries; in OpenAPI they are components.
  const json = JSON.parse(
    JSON.stringify(generated).replaceAll('"#/$defs/', '"#/components/schemas/'),
  ) as JsonSchema;
  const { $schema: _schema, $defs, ...root } = json as JsonSchema & { $defs?: Record<string, JsonSchema> };
  for (const [id, definition] of Object.entries($defs ?? {})) {
    const { id: _id, ...component } = definition;
    components[id] = component;
  }
  const { id: _rootId, ...rest } = root;
  return rest;
}

/**
 * `extraPaths`: operations served beside the route table (the streamed events route), written
 * as OpenAPI already.
 */
export function buildOpenApi(
  routes: readonly RouteSpec[],
  info: { title: string; version: string },
  extraPaths: Record<string, Record<string, unknown>> = {},
): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  const paths: Record<string, Record<string, unknown>> = {};
  const errorRef = schemaOf(ErrorResponse, "output", components);

  for (const route of routes) {
    const parameters: unknown[] = [];
    for (const [name, schema] of Object.entries(route.params ?? {})) {
      parameters.push({ name, in: "path", required: true, schema: schemaOf(schema, "input", components) });
    }
    if (route.query) {
      const query = schemaOf(route.query, "input", components) as {
        properties?: Record<string, unknown>;
        required?: string[];
      };
      for (const [name, schema] of Object.entries(query.properties ?? {})) {
        parameters.push({ name, in: "query", required: query.required?.includes(name) ?? false, schema });
      }
    }
    for (const header of route.headers ?? []) {
      parameters.push({
        name: header.name,
        in: "header",
        required: header.required ?? false,
        description: header.description,
        schema: { type: "string" },
      });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, spec] of Object.entries(route.responses)) {
      responses[status] = spec.schema
        ? {
            description: spec.description,
            content: { "application/json": { schema: schemaOf(spec.schema, "output", components) } },
          }
        : { description: spec.description };
    }
    const generic = route.auth ? [400, 401, 404, 413, 503] : [];
    for (const status of generic) {
      responses[String(status)] ??= {
        description: ERROR_RESPONSES[status],
        content: { "application/json": { schema: errorRef } },
      };
    }
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      parameters,
      responses,
    };
    if (!route.auth) operation.security = [];
    if (route.body) {
      operation.requestBody = {
        required: true,
        content: { "application/json": { schema: schemaOf(route.body, "input", components) } },
      };
    }
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.method.toLowerCase()] = operation;
  }

  for (const [path, operations] of Object.entries(extraPaths))
    paths[path] = { ...paths[path], ...operations };

  return {
    openapi: "3.1.0",
    info,
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearerAuth: { type: "http", scheme: "bearer", description: "Authorization: Bearer <API key>" },
        apiKeyHeader: { type: "apiKey", in: "header", name: "x-api-key" },
      },
    },
  };
}
