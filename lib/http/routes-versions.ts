/** A document's versions: GET /documents/{name}/versions and GET /documents/{name}/versions/{v}. */
import * as z from "zod";
import { notFound } from "../errors.ts";
import type { ApiDeps } from "./deps.ts";
import type { RouteSpec } from "./route.ts";
import { documentBody } from "./routes-documents.ts";
import { DocumentName, DocumentResponse, ErrorResponse } from "./schemas.ts";

const VersionList = z
  .object({
    name: z.string(),
    items: z.array(z.object({ version: z.number().int(), hash: z.string(), updatedAt: z.string() })),
  })
  .meta({ id: "DocumentVersions" });

export function versionRoutes(deps: ApiDeps): RouteSpec[] {
  return [
    {
      method: "GET",
      path: "/documents/{name}/versions",
      operationId: "listDocumentVersions",
      summary: "Every stored version of a document, oldest first",
      auth: true,
      params: { name: DocumentName },
      responses: {
        200: { description: "the versions", schema: VersionList },
        404: { description: "not_found: no such document", schema: ErrorResponse },
      },
      async handle(request) {
        const { name } = request.params as { name: string };
        const versions = await deps.documents.listVersions(request.tenant, name);
        if (versions.length === 0) throw notFound(`document "${name}"`);
        return {
          status: 200,
          body: {
            name,
            items: versions
              .map(({ version, hash, updatedAt }) => ({ version, hash, updatedAt }))
              .sort((a, b) => a.version - b.version),
          },
        };
      },
    },
    {
      method: "GET",
      path: "/documents/{name}/versions/{version}",
      operationId: "getDocumentVersion",
      summary: "One version of a document, as it was sent",
      auth: true,
      params: { name: DocumentName, version: z.coerce.number().int().min(1) },
      responses: {
        200: { description: "the version", schema: DocumentResponse },
        404: { description: "not_found: no such document or version", schema: ErrorResponse },
      },
      async handle(request) {
        const { name } = request.params as { name: string };
        const version = Number(request.params.version);
        const stored = await deps.documents.getVersion(request.tenant, name, version);
        if (!stored) throw notFound(`document "${name}" version ${version}`);
        return { status: 200, body: documentBody(stored) };
      },
    },
  ];
}
