/**
 * A tenant's spend per UTC month, for the monthly budget: pk `budget#<tenant>`, sk
 * `month#YYYY-MM`, `nanoUsd` (N) added atomically (an integer, so the additions are exact in
 * any order). The analysis adds the priced cost of each merge it made.
 */
import { type DynamoDBClient, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { SpendCounter } from "../../ports.ts";
import { guardDynamo, keyPart } from "./errors.ts";

export function createDynamoSpendCounter(options: { client: DynamoDBClient; table: string }): SpendCounter {
  const { client, table } = options;
  return {
    async add(tenant, month, usd) {
      const nano = Math.round(usd * 1e9);
      const result = await guardDynamo("patterns_unavailable", () =>
        client.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { pk: { S: `budget#${keyPart(tenant)}` }, sk: { S: `month#${month}` } },
            UpdateExpression: "ADD nanoUsd :n",
            ExpressionAttributeValues: { ":n": { N: String(nano) } },
            ReturnValues: "UPDATED_NEW",
          }),
        ),
      );
      const after = Number(result.Attributes?.nanoUsd?.N ?? nano);
      return { before: (after - nano) / 1e9, after: after / 1e9 };
    },
  };
}
