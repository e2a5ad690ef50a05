/**
 * MOVA documents in DynamoDB, one table (DOCUMENTS_TABLE, key pk/sk), two kinds of item:
 *
 * - every version, immutable: pk `docver#<tenant>#<name>`, sk `v#<version, 10 digits>`, with
 *   the source as sent (JSON text), its sha256 `hash` over canonical JSON, `updatedAt`;
 * - a "latest" pointer per document for listing: pk `doc#<tenant>`, sk `<name>`, same fields
 *   without the source.
 *
 * The version items are the truth: `get` reads the newest one, and `put` writes version N+1
 * with `attribute_not_exists(pk)`, so of two concurrent puts one gets N+1 and the other
 * retries as N+2 (no version is lost or written twice). The pointer follows with a
 * `version < :new` condition, so it only moves forward; if a process dies between the two
 * writes, `list` shows the previous version until the document's next put. (No
 * TransactWriteItems: dynalite does not support it.)
 */
import { MovaError } from "../../errors.ts";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import { canonicalJson, sha256Hex } from "./canonical-json.ts";
import { guardDynamo, isConditionFailed, keyPart, queryItems } from "./errors.ts";
import type { DocumentStore, StoredDocument } from "../../ports.ts";

interface DynamoDocumentStoreOptions {
  client: DynamoDBClient;
  table: string;
  /** Epoch ms; `Date.now` by default. */
  now?: () => number;
}

const UNAVAILABLE = "document_store_unavailable";
const MAX_PUT_ATTEMPTS = 5;

const versionsPk = (tenant: string, name: string) => `docver#${keyPart(tenant)}#${keyPart(name)}`;
const versionSk = (version: number) => `v#${String(version).padStart(10, "0")}`;
const pointersPk = (tenant: string) => `doc#${keyPart(tenant)}`;

export function createDynamoDocumentStore(options: DynamoDocumentStoreOptions): DocumentStore {
  const { client, table } = options;
  const now = options.now ?? Date.now;

  async function newestVersion(tenant: string, name: string): Promise<StoredDocument | undefined> {
    const result = await guardDynamo(UNAVAILABLE, () =>
      client.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :v)",
          ExpressionAttributeValues: { ":pk": { S: versionsPk(tenant, name) }, ":v": { S: "v#" } },
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: true,
        }),
      ),
    );
    const item = result.Items?.[0];
    return item ? fromItem(item, true) : undefined;
  }

  async function movePointer(stored: StoredDocument): Promise<void> {
    try {
      await guardDynamo(UNAVAILABLE, () =>
        client.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              pk: { S: pointersPk(stored.tenant) },
              sk: { S: keyPart(stored.name) },
              ...metadataItem(stored),
            },
            ConditionExpression: "attribute_not_exists(pk) OR version < :version",
            ExpressionAttributeValues: { ":version": { N: String(stored.version) } },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailed(error)) throw error; // a newer version already moved it
    }
  }

  return {
    async put(tenant, name, source) {
      const hash = sha256Hex(canonicalJson(source));
      const sourceJson = JSON.stringify(source);
      if (sourceJson === undefined) throw new TypeError("a document must be JSON");
      for (let attempt = 0; attempt < MAX_PUT_ATTEMPTS; attempt++) {
        const latest = await newestVersion(tenant, name);
        if (latest && latest.hash === hash) {
          await movePointer(latest);
          return latest;
        }
        const stored: StoredDocument = {
          tenant,
          name,
          version: (latest?.version ?? 0) + 1,
          hash,
          source: JSON.parse(sourceJson),
          updatedAt: new Date(now()).toISOString(),
        };
        try {
          await guardDynamo(UNAVAILABLE, () =>
            client.send(
              new PutItemCommand({
                TableName: table,
                Item: {
                  pk: { S: versionsPk(tenant, name) },
                  sk: { S: versionSk(stored.version) },
                  ...metadataItem(stored),
                  source: { S: sourceJson },
                },
                ConditionExpression: "attribute_not_exists(pk)",
              }),
            ),
          );
        } catch (error) {
          if (isConditionFailed(error)) continue; // another put took this version: read again
          throw error;
        }
        await movePointer(stored);
        return stored;
      }
      throw new MovaError(
        "document_conflict",
        `document ${name} is being changed by other requests; try again`,
      );
    },

    async getVersion(tenant, name, version) {
      const result = await guardDynamo(UNAVAILABLE, () =>
        client.send(
          new GetItemCommand({
            TableName: table,
            Key: { pk: { S: versionsPk(tenant, name) }, sk: { S: versionSk(version) } },
            ConsistentRead: true,
          }),
        ),
      );
      return result.Item ? fromItem(result.Item, true) : undefined;
    },

    get(tenant, name) {
      return newestVersion(tenant, name);
    },

    async listVersions(tenant, name) {
      const versions: Array<Omit<StoredDocument, "source">> = [];
      for await (const item of queryItems(client, UNAVAILABLE, {
        TableName: table,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :v)",
        ExpressionAttributeValues: { ":pk": { S: versionsPk(tenant, name) }, ":v": { S: "v#" } },
        ProjectionExpression: "tenant, #name, version, #hash, updatedAt",
        ExpressionAttributeNames: { "#name": "name", "#hash": "hash" },
        ConsistentRead: true,
      }))
        versions.push(fromItem(item, false));
      return versions;
    },

    async list(tenant) {
      const documents: Array<Omit<StoredDocument, "source">> = [];
      for await (const item of queryItems(client, UNAVAILABLE, {
        TableName: table,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": { S: pointersPk(tenant) } },
      }))
        documents.push(fromItem(item, false));
      return documents;
    },
  };
}

function metadataItem(stored: StoredDocument): Record<string, AttributeValue> {
  return {
    tenant: { S: stored.tenant },
    name: { S: stored.name },
    version: { N: String(stored.version) },
    hash: { S: stored.hash },
    updatedAt: { S: stored.updatedAt },
  };
}

function fromItem(item: Record<string, AttributeValue>, withSource: true): StoredDocument;
function fromItem(item: Record<string, AttributeValue>, withSource: false): Omit<StoredDocument, "source">;
function fromItem(item: Record<string, AttributeValue>, withSource: boolean) {
  const metadata = {
    tenant: item.tenant?.S ?? "",
    name: item.name?.S ?? "",
    version: Number(item.version?.N ?? 0),
    hash: item.hash?.S ?? "",
    updatedAt: item.updatedAt?.S ?? "",
  };
  return withSource ? { ...metadata, source: JSON.parse(item.source?.S ?? "null") } : metadata;
}
