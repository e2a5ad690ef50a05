/**
 * Feedback on an execution: a score in [0, 1] with an optional label and comment, one per
 * execution and source (a repeat replaces it and is counted once). The execution is looked
 * up under the caller's tenant, so another tenant's execution is as unknown as a missing one.
 * Comments are bounded and never logged.
 */
import * as z from "zod";
import { dayOf } from "../analysis/time.ts";
import { MovaError, notFound } from "../errors.ts";
import type { ScoreKey } from "../ports.ts";
import type { ApiDeps } from "./deps.ts";
import type { ApiRequest, RouteSpec } from "./route.ts";
import { ErrorResponse, ExecutionId } from "./schemas.ts";

export const MAX_FEEDBACK_COMMENT = 2000;

const FeedbackRequest = z
  .strictObject({
    score: z.number().min(0).max(1).describe("0 (useless) to 1 (exactly right)"),
    label: z.string().min(1).max(64).optional(),
    comment: z.string().max(MAX_FEEDBACK_COMMENT).optional(),
    source: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/)
      .optional()
      .describe("who gives it (default `user`); one feedback per execution and source"),
  })
  .meta({ id: "FeedbackRequest" });

const ScoreSchema = z.object({
  executionId: z.string(),
  source: z.string(),
  score: z.number(),
  label: z.string().optional(),
  comment: z.string().optional(),
  reason: z.string().optional(),
  at: z.string(),
});

const FeedbackResponse = ScoreSchema.extend({
  /** True when this source's earlier feedback was replaced. */
  replaced: z.boolean(),
}).meta({ id: "FeedbackResponse" });

const FeedbackList = z.object({ items: z.array(ScoreSchema) }).meta({ id: "FeedbackList" });

export function feedbackRoutes(deps: ApiDeps): RouteSpec[] {
  const scores = deps.analysis?.scores;
  if (!scores) return [];

  async function scoreKeyOf(tenant: string, executionId: string): Promise<ScoreKey> {
    const record = await deps.history.getExecution(tenant, executionId);
    if (!record) throw notFound(`execution "${executionId}"`);
    if (record.status === "running" || record.status === "waiting_input") {
      throw new MovaError("execution_not_finished", `execution "${executionId}" has not finished yet`);
    }
    return {
      tenant,
      document: record.document,
      protocol: record.protocol,
      version: record.documentVersion,
      day: dayOf(record.finishedAt),
    };
  }

  return [
    {
      method: "POST",
      path: "/executions/{id}/feedback",
      operationId: "postFeedback",
      summary: "Score an execution (one feedback per execution and source; a repeat replaces it)",
      auth: true,
      params: { id: ExecutionId },
      body: FeedbackRequest,
      responses: {
        200: { description: "recorded", schema: FeedbackResponse },
        404: { description: "not_found: no such execution (also another tenant's)", schema: ErrorResponse },
        409: { description: "execution_not_finished: the run goes on", schema: ErrorResponse },
      },
      async handle(request: ApiRequest<z.infer<typeof FeedbackRequest>>) {
        const executionId = request.params.id as string;
        const key = await scoreKeyOf(request.tenant, executionId);
        const { score, label, comment } = request.body;
        const source = request.body.source ?? "user";
        const stored = {
          executionId,
          source,
          score,
          at: new Date(deps.clock.now()).toISOString(),
          ...(label !== undefined ? { label } : {}),
          ...(comment !== undefined ? { comment } : {}),
        };
        const { replaced } = await scores.put(key, stored);
        // The comment is the user's words: never logged.
        request.logger.info("feedback recorded", { executionId, source, replaced });
        return { status: 200, body: { ...stored, replaced } };
      },
    },
    {
      method: "GET",
      path: "/executions/{id}/feedback",
      operationId: "listFeedback",
      summary: "An execution's feedback and judgements, every source",
      auth: true,
      params: { id: ExecutionId },
      responses: {
        200: { description: "the scores", schema: FeedbackList },
        404: { description: "not_found: no such execution (also another tenant's)", schema: ErrorResponse },
      },
      async handle(request) {
        const executionId = request.params.id as string;
        const record = await deps.history.getExecution(request.tenant, executionId);
        if (!record) throw notFound(`execution "${executionId}"`);
        const key: ScoreKey = {
          tenant: request.tenant,
          document: record.document,
          protocol: record.protocol,
          version: record.documentVersion,
          day: dayOf(record.finishedAt),
        };
        return { status: 200, body: { items: await scores.list(key, executionId) } };
      },
    },
  ];
}
