/**
 * On-demand analysis runs (`POST /analysis/runs`), kept in the patterns table:
 *
 *   pk `run#<tenant>`, sk `<runId>`   run (S) the AnalysisRun as JSON, ttl (N) 30 days after creation
 *
 * The partition is the tenant's, so one tenant can never read another's run. A run is
 * written by the API (queued) and then only by the batch analysis that executes it.
 */
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { guardDynamo, keyPart } from "./errors.ts";

const ANALYSIS_RUN_STATUSES = ["queued", "running", "succeeded", "failed"] as const;
type AnalysisRunStatus = (typeof ANALYSIS_RUN_STATUSES)[number];

export interface AnalysisRunRequest {
  document?: string;
  protocol?: string;
  timeRangeDays: number;
}

export interface AnalysisRunFigures {
  daysTotal: number;
  daysDone: number;
  /** History records read (across the scope's filter). */
  executionsRead: number;
  /** Records in the run's tenant/document/protocol scope. */
  executionsInScope: number;
  /** Executions the stream had not counted, counted by this run. */
  reconciled: number;
  /** Executions whose event was never published, now counted and marked `published`. */
  pendingMarked: number;
  bucketsMerged: number;
  /** Day buckets that disagreed with the history and were replaced by the recomputation. */
  bucketsReplaced: number;
  /** Day buckets that disagreed but were still receiving writes: left for a later run. */
  bucketsUnsettled: number;
}

export interface AnalysisRun {
  runId: string;
  /** Absent for the scheduled run over all tenants. */
  tenant: string;
  status: AnalysisRunStatus;
  request: AnalysisRunRequest;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  progress?: AnalysisRunFigures;
  error?: { code: string; message: string };
}

export interface AnalysisRunStore {
  put(run: AnalysisRun): Promise<void>;
  get(tenant: string, runId: string): Promise<AnalysisRun | undefined>;
}

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
