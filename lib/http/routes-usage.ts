/**
 * GET /usage?from&to&groupBy=: the caller's tokens and cost between two UTC days, grouped by
 * tenant, document, protocol, version, step, model or day (from the stored day buckets, priced
 * at the configured price table).
 */
import * as z from "zod";
import { USAGE_GROUPS, usageRows } from "../analysis/usage.ts";
import { dayOf } from "../analysis/time.ts";
import { invalidRequest } from "../errors.ts";
import type { ApiDeps } from "./deps.ts";
import type { ApiRequest, RouteSpec } from "./route.ts";
import { ErrorResponse } from "./schemas.ts";

const DAY_MS = 86_400_000;
export const MAX_USAGE_DAYS = 366;
const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "a UTC day, YYYY-MM-DD");

const UsageQuery = z.strictObject({
  from: Day.optional().describe("first day (default: 29 days before `to`)"),
  to: Day.optional().describe("last day, inclusive (default: today, UTC)"),
  groupBy: z.enum(USAGE_GROUPS).optional().describe("default `protocol`"),
});

const UsageResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    groupBy: z.enum(USAGE_GROUPS),
    items: z.array(
      z.object({
        group: z.record(z.string(), z.union([z.string(), z.number()])),
        runs: z.number().int(),
        calls: z.number().int(),
        promptTokens: z.number().int(),
        completionTokens: z.number().int(),
        cost: z.number().nullable().describe("US dollars; null when a model is not in the price table"),
        unpriced: z.array(z.string()),
      }),
    ),
    total: z.object({
      promptTokens: z.number().int(),
      completionTokens: z.number().int(),
      cost: z.number().nullable(),
    }),
  })
  .meta({ id: "Usage" });

export function usageRoutes(deps: ApiDeps): RouteSpec[] {
  const analysis = deps.analysis;
  if (!analysis) return [];
  return [
    {
      method: "GET",
      path: "/usage",
      operationId: "getUsage",
      summary: "Tokens and cost between two days, grouped",
      auth: true,
      query: UsageQuery,
      responses: {
        200: { description: "usage rows and their total", schema: UsageResponse },
        400: { description: "invalid_request: a bad range", schema: ErrorResponse },
      },
      async handle(request: ApiRequest<unknown, z.infer<typeof UsageQuery>>) {
        const to = request.query.to ?? dayOf(new Date(deps.clock.now()).toISOString());
        const from =
          request.query.from ??
          new Date(Date.parse(`${to}T00:00:00Z`) - 29 * DAY_MS).toISOString().slice(0, 10);
        const span = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
        if (!(span >= 1)) throw invalidRequest("`from` must be a valid day on or before `to`");
        if (span > MAX_USAGE_DAYS) throw invalidRequest(`at most ${MAX_USAGE_DAYS} days`);
        const groupBy = request.query.groupBy ?? "protocol";
        const protocols = await analysis.patterns.listProtocols(request.tenant);
        const buckets = (
          await Promise.all(protocols.map((key) => analysis.patterns.readBuckets(key, from, to)))
        ).flat();
        const items = usageRows(buckets, groupBy, analysis.prices);
        let cost: number | null = 0;
        for (const item of items) cost = cost === null || item.cost === null ? null : cost + item.cost;
        return {
          status: 200,
          body: {
            from,
            to,
            groupBy,
            items,
            total: {
              promptTokens: items.reduce((sum, i) => sum + i.promptTokens, 0),
              completionTokens: items.reduce((sum, i) => sum + i.completionTokens, 0),
              cost: cost === null ? null : Math.round(cost * 1e6) / 1e6,
            },
          },
        };
      },
    },
  ];
}
