/**
 * PUT/GET /documents/{name}/routing: a document's traffic split between its versions (see
 * lib/services/traffic-split.ts). GET also says whether the split returned to the base by
 * itself, and why.
 */
import * as z from "zod";
import { MovaError, notFound } from "../errors.ts";
import { baseOf } from "../services/traffic-split.ts";
import type { DocumentRouting } from "../ports.ts";
import type { ApiDeps } from "./deps.ts";
import type { ApiRequest, RouteSpec } from "./route.ts";
import { DocumentName, ErrorResponse } from "./schemas.ts";

const Weights = z
  .record(z.string().regex(/^[1-9]\d{0,9}$/, "a version number"), z.number().int().min(0).max(100))
  .refine((weights) => Object.keys(weights).length >= 1 && Object.keys(weights).length <= 10, {
    message: "one to ten versions",
  })
  .refine((weights) => Object.values(weights).reduce((a, b) => a + b, 0) === 100, {
    message: "the shares must add up to 100",
  });

const PutRoutingRequest = z
  .strictObject({ weights: Weights.describe('version → percent, e.g. { "3": 90, "4": 10 }') })
  .meta({ id: "PutRoutingRequest" });

const RoutingResponse = z
  .object({
    document: z.string(),
    weights: z.record(z.string(), z.number()),
    base: z.number().int(),
    candidates: z.array(z.number().int()),
    revision: z.number().int(),
    updatedAt: z.string(),
    rolledBack: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: "Routing" });

function view(document: string, routing: DocumentRouting) {
  const base = baseOf(routing.weights);
  return {
    document,
    weights: routing.weights,
    base,
    candidates: Object.entries(routing.weights)
      .filter(([version, share]) => Number(version) !== base && share > 0)
      .map(([version]) => Number(version)),
    revision: routing.revision,
    updatedAt: routing.updatedAt,
    ...(routing.rolledBack ? { rolledBack: routing.rolledBack } : {}),
  };
}

export function routingRoutes(deps: ApiDeps): RouteSpec[] {
  const routing = deps.routing;
  if (!routing) return [];
  return [
    {
      method: "PUT",
      path: "/documents/{name}/routing",
      operationId: "putRouting",
      summary: "Split new sessions and executions between versions (sticky per user)",
      auth: true,
      params: { name: DocumentName },
      body: PutRoutingRequest,
      responses: {
        200: { description: "the split", schema: RoutingResponse },
        404: { description: "not_found: no such document", schema: ErrorResponse },
        409: { description: "routing_conflict: changed meanwhile; nothing changed", schema: ErrorResponse },
        422: { description: "unknown_version: a version that was never stored", schema: ErrorResponse },
      },
      async handle(request: ApiRequest<z.infer<typeof PutRoutingRequest>>) {
        const { name } = request.params as { name: string };
        const versions = await deps.documents.listVersions(request.tenant, name);
        if (versions.length === 0) throw notFound(`document "${name}"`);
        const known = new Set(versions.map((v) => v.version));
        const unknown = Object.keys(request.body.weights).filter((v) => !known.has(Number(v)));
        if (unknown.length > 0) {
          throw new MovaError("unknown_version", `document "${name}" has no version ${unknown.join(", ")}`);
        }
        const current = await routing.get(request.tenant, name);
        const next = { weights: request.body.weights, updatedAt: new Date(deps.clock.now()).toISOString() };
        if (!(await routing.put(request.tenant, name, next, current?.revision ?? 0))) {
          throw new MovaError(
            "routing_conflict",
            "the split was changed by another request; read it and retry",
          );
        }
        request.logger.info("traffic split set", { document: name, weights: request.body.weights });
        return { status: 200, body: view(name, { ...next, revision: (current?.revision ?? 0) + 1 }) };
      },
    },
    {
      method: "GET",
      path: "/documents/{name}/routing",
      operationId: "getRouting",
      summary: "A document's traffic split, and whether (and why) it rolled back",
      auth: true,
      params: { name: DocumentName },
      responses: {
        200: { description: "the split", schema: RoutingResponse },
        404: { description: "not_found: no split set", schema: ErrorResponse },
      },
      async handle(request) {
        const { name } = request.params as { name: string };
        const split = await routing.get(request.tenant, name);
        if (!split) throw notFound(`traffic split of document "${name}"`);
        return { status: 200, body: view(name, split) };
      },
    },
  ];
}
