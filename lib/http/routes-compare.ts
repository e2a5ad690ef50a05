/**
 * GET /documents/{name}/protocols/{protocol}/compare?base=&candidate=&window=: a candidate
 * version against a base version of a protocol, measure by measure (lib/analysis/compare.ts
 * says which test each measure uses), over a window of days.
 */
import * as z from "zod";
import { compareStoredVersions } from "../services/version-comparison.ts";
import { invalidRequest, notFound } from "../errors.ts";
import type { ApiDeps } from "./deps.ts";
import { DEFAULT_WINDOW_DAYS, ProtocolName, WindowDays, windowOf } from "./routes-analysis.ts";
import type { ApiRequest, RouteSpec } from "./route.ts";
import { DocumentName, ErrorResponse } from "./schemas.ts";

const Version = z.coerce.number().int().min(0);
const CompareQuery = z.strictObject({
  base: Version.describe("the version compared against"),
  candidate: Version.describe("the version judged"),
  window: WindowDays,
});

const Measure = z.object({
  measure: z.string(),
  base: z.number().nullable(),
  candidate: z.number().nullable(),
  difference: z.number().nullable(),
  test: z.string(),
  pValue: z.number().nullable(),
  verdict: z.enum(["better", "worse", "inconclusive"]),
  n: z.object({ base: z.number().int(), candidate: z.number().int() }),
  moreRunsNeeded: z.number().int().nullable(),
});

const CompareResponse = z
  .object({
    document: z.string(),
    protocol: z.string(),
    base: z.number().int(),
    candidate: z.number().int(),
    window: z.object({ from: z.string(), to: z.string(), days: z.number() }),
    /** worse when a quality measure (success, completion, feedback, evaluator score) is worse; better when one is better and none worse. */
    verdict: z.enum(["better", "worse", "inconclusive"]),
    measures: z.array(Measure),
  })
  .meta({ id: "VersionComparison" });

export function compareRoutes(deps: ApiDeps): RouteSpec[] {
  if (!deps.analysis) return [];
  return [
    {
      method: "GET",
      path: "/documents/{name}/protocols/{protocol}/compare",
      operationId: "compareVersions",
      summary: "A candidate version against a base version: each measure, its test, p-value and verdict",
      auth: true,
      params: { name: DocumentName, protocol: ProtocolName },
      query: CompareQuery,
      responses: {
        200: { description: "the comparison", schema: CompareResponse },
        400: { description: "invalid_request: base and candidate are the same", schema: ErrorResponse },
        404: { description: "not_found: no such document, and no analysed runs", schema: ErrorResponse },
      },
      async handle(request: ApiRequest<unknown, z.infer<typeof CompareQuery>>) {
        const { name, protocol } = request.params as { name: string; protocol: string };
        const { base, candidate } = request.query;
        if (base === candidate) throw invalidRequest("base and candidate must be different versions");
        const days = request.query.window ?? DEFAULT_WINDOW_DAYS;
        const window = windowOf(days, deps.clock.now());
        const analysis = deps.analysis!;
        const result = await compareStoredVersions(
          { patterns: analysis.patterns, scores: analysis.scores, prices: analysis.prices },
          { tenant: request.tenant, document: name, protocol },
          base,
          candidate,
          window,
        );
        if (!result.hasData) {
          const document = await deps.documents.get(request.tenant, name);
          if (!document) throw notFound(`document "${name}"`);
        }
        const { measures } = result;
        return {
          status: 200,
          body: {
            document: name,
            protocol,
            base,
            candidate,
            window: { from: window.from, to: window.to, days: window.days },
            verdict: result.verdict,
            measures,
          },
        };
      },
    },
  ];
}
