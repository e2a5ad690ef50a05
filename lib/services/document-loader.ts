/**
 * Loads a tenant's stored document and its parsed form. Parsing and validating is paid once
 * per content hash per container, not on every request.
 */
import type { MovaDocument } from "../mova/schema.ts";
import { validateDocument } from "../mova/validate.ts";
import type { DocumentStore, StoredDocument } from "../ports.ts";
import type { LoadedDocument } from "./executions.ts";
import { MovaError, notFound } from "../errors.ts";

const CACHE_LIMIT = 200;

export interface DocumentLoader {
  load(tenant: string, name: string): Promise<LoadedDocument>;
  /** One stored version (a durable run goes on with the version it started with). */
  loadVersion(tenant: string, name: string, version: number): Promise<LoadedDocument>;
}

export function createDocumentLoader(documents: DocumentStore): DocumentLoader {
  const parsedByHash = new Map<string, MovaDocument>();
  function parsedOf(tenant: string, name: string, stored: StoredDocument): LoadedDocument {
    const cacheKey = `${tenant}\u0000${name}\u0000${stored.hash}`;
    let parsed = parsedByHash.get(cacheKey);
    if (!parsed) {
      const validation = validateDocument(stored.source);
      if (!validation.valid || !validation.document) {
        // Only valid documents are stored, so this means the validator got stricter since.
        throw new MovaError("invalid_document", `stored document "${name}" no longer validates`, {
          details: { errors: validation.errors },
        });
      }
      parsed = validation.document;
      if (parsedByHash.size >= CACHE_LIMIT) {
        const oldest = parsedByHash.keys().next().value;
        if (oldest !== undefined) parsedByHash.delete(oldest);
      }
      parsedByHash.set(cacheKey, parsed);
    }
    return { stored, parsed };
  }
  return {
    async load(tenant, name) {
      const stored = await documents.get(tenant, name);
      if (!stored) throw notFound(`document "${name}"`);
      return parsedOf(tenant, name, stored);
    },
    async loadVersion(tenant, name, version) {
      const stored = await documents.getVersion(tenant, name, version);
      if (!stored) throw notFound(`document "${name}" version ${version}`);
      return parsedOf(tenant, name, stored);
    },
  };
}
