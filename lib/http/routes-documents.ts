/** PUT/GET /documents/{name}, GET /documents. */
import type * as z from "zod";
import { validateDocument } from "../mova/validate.ts";
import type { StoredDocument } from "../ports.ts";
import type { ApiDeps } from "./deps.ts";
import { MovaError, notFound } from "../errors.ts";
import type { ApiRequest, RouteSpec } from "./route.ts";
import {
  DocumentListResponse,
  DocumentName,
  DocumentResponse,
  ErrorResponse,
  PutDocumentRequest,
  PutDocumentResponse,
} from "./schemas.ts";

const nameParam = { name: DocumentName };

/** GET /documents/{name} and GET …/versions/{v}: one stored version, its source as it was sent. */
export function documentBody(stored: StoredDocument): z.infer<typeof DocumentResponse> {
  return {
    name: stored.name,
    version: stored.version,
    hash: stored.hash,
    updatedAt: stored.updatedAt,
    document: stored.source,
  };
}

export function documentRoutes(deps: ApiDeps): RouteSpec[] {
  return [
    {
      method: "PUT",
      path: "/documents/{name}",
      operationId: "putDocument",
      summary: "Store a MOVA document (a new version when it changed)",
      auth: true,
      params: nameParam,
      body: PutDocumentRequest,
      responses: {
        200: { description: "updated (or unchanged: same version)", schema: PutDocumentResponse },
        201: { description: "created", schema: PutDocumentResponse },
        422: {
          description: "invalid_document: details.errors holds the validator's errors",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<Record<string, unknown>>) {
        const { name } = request.params as { name: string };
        const validation = validateDocument(request.body);
        if (!validation.valid) {
          throw new MovaError("invalid_document", "the document is not a valid MOVA document", {
            details: { errors: validation.errors, warnings: validation.warnings },
          });
        }
        const existing = await deps.documents.get(request.tenant, name);
        const stored = await deps.documents.put(request.tenant, name, request.body);
        request.logger.info("document stored", { document: name, version: stored.version });
        return {
          status: existing ? 200 : 201,
          body: {
            name: stored.name,
            version: stored.version,
            hash: stored.hash,
            warnings: validation.warnings,
          },
        };
      },
    },
    {
      method: "GET",
      path: "/documents/{name}",
      operationId: "getDocument",
      summary: "The latest version of a document, as it was sent",
      auth: true,
      params: nameParam,
      responses: { 200: { description: "the document", schema: DocumentResponse } },
      async handle(request) {
        const { name } = request.params as { name: string };
        const stored = await deps.documents.get(request.tenant, name);
        if (!stored) throw notFound(`document "${name}"`);
        return { status: 200, body: documentBody(stored) };
      },
    },
    {
      method: "GET",
      path: "/documents",
      operationId: "listDocuments",
      summary: "The tenant's documents",
      auth: true,
      responses: { 200: { description: "the documents, latest versions", schema: DocumentListResponse } },
      async handle(request) {
        const items = await deps.documents.list(request.tenant);
        return {
          status: 200,
          body: {
            items: items.map(({ name, version, hash, updatedAt }) => ({ name, version, hash, updatedAt })),
          },
        };
      },
    },
  ];
}
