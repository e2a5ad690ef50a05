/**
 * POST /documents/{name}/protocols/{protocol}/recommendations/{id}/apply: a recommendation's
 * patch becomes the document's next version. The patch is applied to the latest version (it
 * starts with a `test` of what it changes, so a document changed there since is a 409), the
 * result is validated (422 with the validator's errors), and only then stored: a refused apply
 * changes nothing.
 */
import * as z from "zod";
import { applyPatch, describePatch } from "../analysis/patches.ts";
import { MovaError, notFound } from "../errors.ts";
import { validateDocument } from "../mova/validate.ts";
import type { DocumentLoader } from "../services/document-loader.ts";
import type { ApiDeps } from "./deps.ts";
import { ProtocolName, WindowDays, protocolReport } from "./routes-analysis.ts";
import type { ApiRequest, RouteSpec } from "./route.ts";
import { DocumentName, ErrorResponse } from "./schemas.ts";

const ApplyRequest = z
  .strictObject({
    version: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("the version the recommendation was computed from (default: the latest)"),
    window: WindowDays,
    canary: z
      .number()
      .int()
      .min(1)
      .max(99)
      .optional()
      .describe("send this percent of new sessions and executions to the new version (a traffic split)"),
  })
  .meta({ id: "ApplyRecommendationRequest" });

const ApplyResponse = z
  .object({
    name: z.string(),
    /** The new version (the same as the latest when the patch changed nothing). */
    version: z.number().int(),
    previousVersion: z.number().int(),
    hash: z.string(),
    changes: z.array(z.string()),
    warnings: z.array(z.unknown()),
    /** With `canary`: the traffic split set. */
    weights: z.record(z.string(), z.number()).optional(),
  })
  .meta({ id: "ApplyRecommendationResponse" });

export function recommendationRoutes(deps: ApiDeps, loader: DocumentLoader): RouteSpec[] {
  if (!deps.analysis) return [];
  return [
    {
      method: "POST",
      path: "/documents/{name}/protocols/{protocol}/recommendations/{id}/apply",
      operationId: "applyRecommendation",
      summary: "Make a recommendation's patch the document's next version",
      auth: true,
      params: { name: DocumentName, protocol: ProtocolName, id: z.string().regex(/^rec_[0-9a-f]{16}$/) },
      body: ApplyRequest,
      responses: {
        201: { description: "the new version", schema: ApplyResponse },
        404: { description: "not_found: no such document or recommendation", schema: ErrorResponse },
        409: {
          description: "patch_conflict: the latest version changed where the patch applies; nothing changed",
          schema: ErrorResponse,
        },
        422: {
          description:
            "invalid_document (details.errors: the validator's) or recommendation_not_applicable (no patch); nothing changed",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<z.infer<typeof ApplyRequest>>) {
        const { name } = request.params as { name: string };
        const id = request.params.id as string;
        const { version, window, canary } = request.body;
        if (canary !== undefined && !deps.routing) {
          throw new MovaError("invalid_request", "no traffic split store is configured for `canary`");
        }
        const { recommendations } = await protocolReport(deps, loader, {
          ...request,
          query: {
            ...(window !== undefined ? { window } : {}),
            ...(version !== undefined ? { version } : {}),
          },
        } as ApiRequest<unknown, { window?: number; version?: number }>);
        const recommendation = recommendations.find((r) => r.id === id);
        if (!recommendation) throw notFound(`recommendation "${id}"`);
        if (!recommendation.patch) {
          throw new MovaError(
            "recommendation_not_applicable",
            `recommendation "${id}" needs a person's judgement: it carries no patch`,
          );
        }
        const latest = await deps.documents.get(request.tenant, name);
        if (!latest) throw notFound(`document "${name}"`);
        const patched = applyPatch(latest.source, recommendation.patch);
        if (!patched.ok) {
          throw new MovaError(
            "patch_conflict",
            `the patch no longer applies to version ${latest.version}: ${patched.error}`,
            { details: { version: latest.version } },
          );
        }
        const validation = validateDocument(patched.document);
        if (!validation.valid) {
          throw new MovaError("invalid_document", "the patched document is not a valid MOVA document", {
            details: { errors: validation.errors, warnings: validation.warnings },
          });
        }
        const stored = await deps.documents.put(request.tenant, name, patched.document);
        let weights: Record<string, number> | undefined;
        if (canary !== undefined && deps.routing && stored.version !== latest.version) {
          const current = await deps.routing.get(request.tenant, name);
          weights = { [String(latest.version)]: 100 - canary, [String(stored.version)]: canary };
          const split = { weights, updatedAt: new Date(deps.clock.now()).toISOString() };
          if (!(await deps.routing.put(request.tenant, name, split, current?.revision ?? 0))) {
            // The version stands; only the split lost a race.
            throw new MovaError(
              "routing_conflict",
              `version ${stored.version} was stored, but the split changed meanwhile: set it with PUT /documents/${name}/routing`,
            );
          }
        }
        request.logger.info("recommendation applied", {
          document: name,
          recommendation: id,
          from: latest.version,
          version: stored.version,
        });
        return {
          status: 201,
          body: {
            name,
            version: stored.version,
            previousVersion: latest.version,
            hash: stored.hash,
            changes: describePatch(recommendation.patch),
            warnings: validation.warnings,
            ...(weights ? { weights } : {}),
          },
        };
      },
    },
  ];
}
