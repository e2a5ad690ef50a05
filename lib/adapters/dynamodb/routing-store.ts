/**
 * A document's traffic split in DOCUMENTS_TABLE: pk `docroute#<tenant>#<name>`, sk `routing`,
 * `routing` (S, JSON), `revision` (N) for the conditional write.
 */
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { DocumentRouting, RoutingStore } from "../../ports.ts";
import { guardDynamo, isConditionFailed, keyPart } from "./errors.ts";

const UNAVAILABLE = "documents_unavailable";
const pkOf = (tenant: string, document: string) => `docroute#${keyPart(tenant)}#${keyPart(document)}`;

export function createDynamoRoutingStore(options: { client: DynamoDBClient; table: string }): RoutingStore {
  const { client, table } = options;
  return {
    async get(tenant, document) {
      const result = await guardDynamo(UNAVAILABLE, () =>
        client.send(
          new GetItemCommand({
            TableName: table,
            Key: { pk: { S: pkOf(tenant, document) }, sk: { S: "routing" } },
            ConsistentRead: true,
          }),
        ),
      );
      const json = result.Item?.routing?.S;
      if (json === undefined) return undefined;
      return {
        ...(JSON.parse(json) as Omit<DocumentRouting, "revision">),
        revision: Number(result.Item?.revision?.N ?? 0),
      };
    },
    async put(tenant, document, routing, expectedRevision) {
      try {
        await guardDynamo(UNAVAILABLE, () =>
          client.send(
            new PutItemCommand({
              TableName: table,
              Item: {
                pk: { S: pkOf(tenant, document) },
                sk: { S: "routing" },
                routing: { S: JSON.stringify(routing) },
                revision: { N: String(expectedRevision + 1) },
              },
              ...(expectedRevision === 0
                ? { ConditionExpression: "attribute_not_exists(pk)" }
                : {
                    ConditionExpression: "revision = :expected",
                    ExpressionAttributeValues: { ":expected": { N: String(expectedRevision) } },
                  }),
            }),
          ),
        );
        return true;
      } catch (error) {
        if (isConditionFailed(error)) return false;
        throw error;
      }
    },
  };
}
