/**
 * Scores on executions (users' feedback, evaluators' judgements) in the patterns table,
 * beside the protocol's day buckets:
 *
 *   pk `<tenant>#<document>#<protocol>` (URI-encoded parts),
 *   sk `score#<YYYY-MM-DD>#v<version, 10 digits>#<executionId>#<source>`   one score
 *      score (N), kind (S: `feedback` or `evaluator`), label, comment, reason, at, ttl
 *
 * One item per execution and source, written with a plain put: a repeated delivery writes the
 * same item again and a new score from the same source replaces the old one, so the figures,
 * read from the items, count each score exactly once whatever the delivery did. The day is
 * the execution's finish day (the day its bucket uses), so a window reads one key range.
 */
import { type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { AggregateKey } from "../../analysis/aggregate.ts";
import { EVALUATOR_SOURCE_PREFIX, type VersionScores, emptyMoments } from "../../analysis/scores.ts";
import type { ExecutionScore, ScoreKey, ScoreStore } from "../../ports.ts";
import { guardDynamo, keyPart, queryItems } from "./errors.ts";

interface DynamoScoreStoreOptions {
  client: DynamoDBClient;
  table: string;
  /** Scores expire (DynamoDB TTL) this long after their day. Default 400, as the buckets. */
  retentionDays?: number;
}

const UNAVAILABLE = "patterns_unavailable";
const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

const protocolPk = (key: AggregateKey) =>
  `${keyPart(key.tenant)}#${keyPart(key.document)}#${keyPart(key.protocol)}`;
const versionPart = (version: number) => `v${String(version).padStart(10, "0")}`;
const executionPrefix = (key: ScoreKey, executionId: string) =>
  `score#${key.day}#${versionPart(key.version)}#${keyPart(executionId)}#`;

export function createDynamoScoreStore(options: DynamoScoreStoreOptions): ScoreStore {
  const { client, table } = options;
  const retentionSeconds = (options.retentionDays ?? 400) * 86_400;
  return {
    async put(key, score) {
      const item = {
        pk: { S: protocolPk(key) },
        sk: { S: `${executionPrefix(key, score.executionId)}${keyPart(score.source)}` },
        executionId: { S: score.executionId },
        source: { S: score.source },
        kind: { S: score.source.startsWith(EVALUATOR_SOURCE_PREFIX) ? "evaluator" : "feedback" },
        score: { N: String(score.score) },
        at: { S: score.at },
        ttl: { N: String(Math.floor(Date.parse(`${key.day}T00:00:00Z`) / 1000) + retentionSeconds) },
        ...(score.label !== undefined ? { label: { S: score.label } } : {}),
        ...(score.comment !== undefined ? { comment: { S: score.comment } } : {}),
        ...(score.reason !== undefined ? { reason: { S: score.reason } } : {}),
      };
      const result = await guardDynamo(UNAVAILABLE, () =>
        client.send(new PutItemCommand({ TableName: table, Item: item, ReturnValues: "ALL_OLD" })),
      );
      return { replaced: result.Attributes !== undefined };
    },

    async list(key, executionId) {
      const out: ExecutionScore[] = [];
      for await (const item of queryItems(client, UNAVAILABLE, {
        TableName: table,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: {
          ":pk": { S: protocolPk(key) },
          ":prefix": { S: executionPrefix(key, executionId) },
        },
      })) {
        out.push({
          executionId,
          source: item.source?.S ?? "",
          score: Number(item.score?.N ?? 0),
          at: item.at?.S ?? "",
          ...(item.label?.S !== undefined ? { label: item.label.S } : {}),
          ...(item.comment?.S !== undefined ? { comment: item.comment.S } : {}),
          ...(item.reason?.S !== undefined ? { reason: item.reason.S } : {}),
        });
      }
      return out;
    },

    async summarize(key, fromDay, toDay) {
      if (!DAY_PATTERN.test(fromDay) || !DAY_PATTERN.test(toDay)) {
        throw new RangeError(`days must be YYYY-MM-DD: ${fromDay}, ${toDay}`);
      }
      const byVersion = new Map<number, VersionScores>();
      for await (const item of queryItems(client, UNAVAILABLE, {
        TableName: table,
        KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
        ExpressionAttributeValues: {
          ":pk": { S: protocolPk(key) },
          ":from": { S: `score#${fromDay}` },
          ":to": { S: `score#${toDay}~` },
        },
        ProjectionExpression: "sk, score, kind",
      })) {
        const version = Number((item.sk?.S ?? "").split("#")[2]?.slice(1));
        const score = Number(item.score?.N);
        if (!Number.isSafeInteger(version) || !Number.isFinite(score)) continue;
        if (key.version !== undefined && version !== key.version) continue;
        let scores = byVersion.get(version);
        if (!scores) {
          scores = { version, feedback: emptyMoments(), evaluator: emptyMoments() };
          byVersion.set(version, scores);
        }
        const moments = item.kind?.S === "evaluator" ? scores.evaluator : scores.feedback;
        moments.n += 1;
        moments.sum += score;
        moments.sumSq += score * score;
      }
      return [...byVersion.values()].sort((a, b) => a.version - b.version);
    },
  };
}
