/**
 * GET /documents/{name}/protocols/{protocol}/compare?base=&candidate=&window=: a candidate
 * version against a base version of a protocol, measure by measure (lib/analysis/compare.ts
 * says which test each measure uses), over a window of days.
 */
import * as z from "zod";
import { type AggregateKey, createAggregate } from "../analysis/aggregate.ts";
import { type MeasureComparison, type Verdict, compareVersions } from "../analysis/compare.ts";
import { emptyMoments } from "../analysis/scores.ts";
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

const QUALITY_MEASURES = new Set(["success_rate", "completion_rate", "feedback", "evaluator_score"]);

export function overallVerdict(measures: readonly MeasureComparison[]): Verdict {
  const quality = measures.filter((m) => QUALITY_MEASURES.has(m.measure));
  if (quality.some((m) => m.verdict === "worse")) return "worse";
  return quality.some((m) => m.verdict === "better") ? "better" : "inconclusive";
}

/** The comparison of two versions over a window of days, from the stored aggregates and scores. */
export async function compareStored(
  deps: ApiDeps,
  key: AggregateKey,
  base: number,
  candidate: number,
  windowDays: number,
): Promise<
  { measures: MeasureComparison[]; verdict: Verdict; window: ReturnType<typeof windowOf> } | undefined
> {
  const analysis = deps.analysis!;
  const window = windowOf(windowDays, deps.clock.now());
  const protocolKey = { tenant: key.tenant, document: key.document, protocol: key.protocol };
  const [stored, scores] = await Promise.all([
    analysis.patterns.readWindow(protocolKey, window.fromDay, window.toDay),
    analysis.scores
      ? analysis.scores.summarize(protocolKey, window.fromDay, window.toDay)
      : Promise.resolve([]),
  ]);
  if (!stored && scores.length === 0) return undefined;
  const side = (version: number) => ({
    aggregate:
      stored?.versions.find((a) => a.version === version) ?? createAggregate({ ...protocolKey, version }),
    feedback: scores.find((s) => s.version === version)?.feedback ?? emptyMoments(),
    evaluator: scores.find((s) => s.version === version)?.evaluator ?? emptyMoments(),
  });
  const measures = compareVersions(side(base), side(candidate), {
    ...(analysis.prices ? { prices: analysis.prices } : {}),
  });
  return { measures, verdict: overallVerdict(measures), window };
}

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
        const result = await compareStored(
          deps,
          { tenant: request.tenant, document: name, protocol },
          base,
          candidate,
          days,
        );
        if (!result) {
          const document = await deps.documents.get(request.tenant, name);
          if (!document) throw notFound(`document "${name}"`);
        }
        const window = result?.window ?? windowOf(days, deps.clock.now());
        const measures =
          result?.measures ??
          compareVersions(
            {
              aggregate: createAggregate({ tenant: request.tenant, document: name, protocol }),
              feedback: emptyMoments(),
              evaluator: emptyMoments(),
            },
            {
              aggregate: createAggregate({ tenant: request.tenant, document: name, protocol }),
              feedback: emptyMoments(),
              evaluator: emptyMoments(),
            },
          );
        return {
          status: 200,
          body: {
            document: name,
            protocol,
            base,
            candidate,
            window: { from: window.from, to: window.to, days: window.days },
            verdict: result?.verdict ?? "inconclusive",
            measures,
          },
        };
      },
    },
  ];
}
