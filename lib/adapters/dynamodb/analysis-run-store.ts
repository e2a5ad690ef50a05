/**
 * On-demand analysis runs (`POST /analysis/runs`), kept in the patterns table:
 *
 *   pk `run#<tenant>`, sk `<runId>`   run (S) the AnalysisRun as JSON, ttl (N) 30 days after creation
 *
 * The partition is the tenant's, so one tenant can never read another's run. A run is
 * written by the API (queued) and then only by the batch analysis that executes it.
 */
import type { AnalysisRun, AnalysisRunStore } from "../../ports.ts";
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { guardDynamo, keyPart } from "./errors.ts";

const UNAVAILABLE = "analysis_runs_unavailable";
const RUN_TTL_SECONDS = 30 * 86_400;

export function createDynamoAnalysisRunStore(options: {
  client: DynamoDBClient;
  table: string;
}): AnalysisRunStore {
  const { client, table } = options;
  const key = (tenant: string, runId: string) => ({
    pk: { S: `run#${keyPart(tenant)}` },
    sk: { S: keyPart(runId) },
  });
  return {
    async put(run) {
      const created = Date.parse(run.createdAt);
      await guardDynamo(UNAVAILABLE, () =>
        client.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              ...key(run.tenant, run.runId),
              run: { S: JSON.stringify(run) },
              ttl: {
                N: String(
                  Math.floor((Number.isNaN(created) ? Date.now() : created) / 1000) + RUN_TTL_SECONDS,
                ),
              },
            },
          }),
        ),
      );
    },
    async get(tenant, runId) {
      const result = await guardDynamo(UNAVAILABLE, () =>
        client.send(new GetItemCommand({ TableName: table, Key: key(tenant, runId), ConsistentRead: true })),
      );
      const text = result.Item?.run?.S;
      if (!text) return undefined;
      const run = JSON.parse(text) as AnalysisRun;
      return run.tenant === tenant ? run : undefined;
    },
  };
}
