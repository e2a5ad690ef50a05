/**
 * The analysis routes: a protocol's patterns and recommendations over a window of days
 * (merged from the stored day aggregates), the patterns of all the tenant's protocols, and
 * on-demand batch analysis runs. Every read is keyed by the caller's tenant.
 */
import * as z from "zod";
import { PATTERN_TYPES, type PatternType } from "../analysis/patterns.ts";
import { type AnalysisReport, type ProtocolReport, reportFromAggregates } from "../analysis/analyze.ts";
import { computeStatistics } from "../analysis/statistics.ts";
import { type ActionableRecommendation, actionable } from "../analysis/patches.ts";
import type { LoadedDocument } from "../services/executions.ts";
import { dayOf } from "../analysis/time.ts";
import { isMovaError, notFound } from "../errors.ts";
import { MAX_WINDOW_DAYS } from "../services/batch-analysis.ts";
import type { ApiDeps } from "./deps.ts";
import type { DocumentLoader } from "../services/document-loader.ts";
import type { ApiRequest, RouteSpec } from "./route.ts";
import { DocumentName, ErrorResponse } from "./schemas.ts";

export const DEFAULT_WINDOW_DAYS = 30;
const DAY_MS = 86_400_000;
export const ProtocolName = z.string().min(1).max(256);
const RunId = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/);

export const WindowDays = z.coerce
  .number()
  .int()
  .min(1)
  .max(MAX_WINDOW_DAYS)
  .optional()
  .describe(`window in days ending today (UTC), default ${DEFAULT_WINDOW_DAYS}, at most ${MAX_WINDOW_DAYS}`);

const VersionQuery = z.coerce
  .number()
  .int()
  .min(0)
  .optional()
  .describe("only the runs of this document version (default: every version)");
const PatternsQuery = z.strictObject({
  type: z.enum(PATTERN_TYPES).optional().describe("only patterns of this type"),
  window: WindowDays,
  version: VersionQuery,
});
const TenantPatternsQuery = PatternsQuery.omit({ version: true });
const RecommendationsQuery = z.strictObject({ window: WindowDays, version: VersionQuery });

const Window = z.object({ from: z.string(), to: z.string(), days: z.number() });
const PatternSchema = z
  .object({ type: z.enum(PATTERN_TYPES), protocol: z.string(), figures: z.record(z.string(), z.unknown()) })
  .catchall(z.unknown())
  .describe("a pattern with the figures behind it; the other fields depend on `type`")
  .meta({ id: "Pattern" });
const RecommendationSchema = z
  .object({
    id: z.string().describe("stable for the same finding on the same version; what .../apply takes"),
    kind: z.string(),
    protocol: z.string(),
    step: z.string().optional(),
    message: z.string(),
    statement: z.string().describe("what the figures say, in one line"),
    evidence: z.record(z.string(), z.unknown()),
    patch: z
      .array(z.record(z.string(), z.unknown()))
      .nullable()
      .describe("an RFC 6902 JSON Patch against `version`; null when the change needs a person"),
    version: z.number().int().nullable().describe("the document version the patch is against"),
  })
  .meta({ id: "Recommendation" });

/** What every per-protocol analysis answer starts with. */
const ProtocolWindow = z.object({
  document: z.string(),
  protocol: z.string(),
  /** The document version the figures are of; null: every version. */
  version: z.number().int().nullable(),
  window: Window,
  /** Days of the window that held data. */
  daysWithData: z.number().int(),
});

const VersionSummary = z.object({
  version: z.number().int(),
  executions: z.number().int(),
  completionRate: z.number().nullable(),
  successRate: z.number().nullable(),
  costPerRun: z.number().nullable(),
});

const ProtocolPatternsResponse = ProtocolWindow.extend({
  statistics: z.record(z.string(), z.unknown()).nullable(),
  patterns: z.array(PatternSchema),
  /** Each document version's headline figures over the window. */
  versions: z.array(VersionSummary),
}).meta({ id: "ProtocolPatterns" });

const RecommendationsResponse = ProtocolWindow.extend({
  recommendations: z.array(RecommendationSchema),
}).meta({ id: "Recommendations" });

const TenantPatternsResponse = z
  .object({
    window: Window,
    items: z.array(
      z.object({
        document: z.string(),
        protocol: z.string(),
        executions: z.number().int(),
        patterns: z.array(PatternSchema),
      }),
    ),
  })
  .meta({ id: "TenantPatterns" });

const CreateAnalysisRunRequest = z
  .strictObject({
    document: DocumentName.optional(),
    protocol: ProtocolName.optional(),
    timeRangeDays: z.number().int().min(1).max(MAX_WINDOW_DAYS).optional(),
  })
  .meta({ id: "CreateAnalysisRunRequest" });

const RunFigures = z.object({
  daysTotal: z.number().int(),
  daysDone: z.number().int(),
  executionsRead: z.number().int(),
  executionsInScope: z.number().int(),
  reconciled: z.number().int(),
  pendingMarked: z.number().int(),
  bucketsMerged: z.number().int(),
  bucketsReplaced: z.number().int(),
  bucketsUnsettled: z.number().int(),
});

const AnalysisRunResponse = z
  .object({
    runId: z.string(),
    status: z.enum(["queued", "running", "succeeded", "failed"]),
    request: z.object({
      document: z.string().optional(),
      protocol: z.string().optional(),
      timeRangeDays: z.number().int(),
    }),
    createdAt: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    progress: RunFigures.optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  })
  .meta({ id: "AnalysisRun" });

const CreateAnalysisRunResponse = z
  .object({ runId: z.string(), status: z.literal("queued"), location: z.string() })
  .meta({ id: "CreateAnalysisRunResponse" });

export function windowOf(
  days: number,
  now: number,
): { from: string; to: string; days: number; fromDay: string; toDay: string } {
  const toDay = dayOf(new Date(now).toISOString());
  const fromDay = new Date(Date.parse(`${toDay}T00:00:00Z`) - (days - 1) * DAY_MS).toISOString().slice(0, 10);
  return { from: `${fromDay}T00:00:00.000Z`, to: new Date(now).toISOString(), days, fromDay, toDay };
}

async function documentOf(
  loader: DocumentLoader,
  tenant: string,
  name: string,
  version?: number,
): Promise<LoadedDocument | undefined> {
  try {
    return await (version === undefined
      ? loader.load(tenant, name)
      : loader.loadVersion(tenant, name, version));
  } catch (error) {
    if (isMovaError(error, "not_found", "invalid_document")) return undefined;
    throw error;
  }
}

/** The protocol's report over the window, and the fields every answer about it starts with. */
export async function protocolReport(
  deps: ApiDeps,
  loader: DocumentLoader,
  request: ApiRequest<unknown, { window?: number; version?: number }>,
): Promise<{
  report: ProtocolReport | undefined;
  head: z.infer<typeof ProtocolWindow>;
  versions: Array<z.infer<typeof VersionSummary>>;
  recommendations: ActionableRecommendation[];
}> {
  const { name, protocol } = request.params as { name: string; protocol: string };
  const version = request.query.version;
  const window = windowOf(request.query.window ?? DEFAULT_WINDOW_DAYS, deps.clock.now());
  const [loaded, stored] = await Promise.all([
    documentOf(loader, request.tenant, name, version),
    deps.analysis!.patterns.readWindow(
      { tenant: request.tenant, document: name, protocol, version },
      window.fromDay,
      window.toDay,
    ),
  ]);
  const document = loaded?.parsed;
  if (!stored && !document) throw notFound(`document "${name}"`);
  if (!stored && document && !document.protocols.some((p) => p.name === protocol)) {
    throw notFound(`protocol "${protocol}" of document "${name}"`);
  }
  const prices = deps.analysis!.prices;
  const report: AnalysisReport | undefined = stored
    ? reportFromAggregates([stored.aggregate], () => document, {
        now: new Date(deps.clock.now()),
        window: { from: window.from, to: window.to, days: window.days },
        prices,
      })
    : undefined;
  const versions = (stored?.versions ?? []).map((aggregate) => {
    const statistics = computeStatistics(aggregate, undefined, prices);
    return {
      version: aggregate.version ?? 0,
      executions: statistics.total,
      completionRate: statistics.completionRate,
      successRate: statistics.quality.successRate,
      costPerRun: statistics.cost.costPerRun,
    };
  });
  return {
    report: report?.protocols[0],
    head: {
      document: name,
      protocol,
      version: version ?? null,
      window: { from: window.from, to: window.to, days: window.days },
      daysWithData: stored?.days ?? 0,
    },
    versions,
    recommendations: actionable(
      report?.protocols[0]?.recommendations ?? [],
      loaded?.stored.source,
      loaded?.stored.version ?? null,
    ),
  };
}

export function analysisRoutes(deps: ApiDeps, loader: DocumentLoader): RouteSpec[] {
  const analysis = deps.analysis;
  if (!analysis) return [];
  const publicWindow = (w: ReturnType<typeof windowOf>) => ({ from: w.from, to: w.to, days: w.days });
  const protocolParams = { name: DocumentName, protocol: ProtocolName };

  return [
    {
      method: "GET",
      path: "/documents/{name}/protocols/{protocol}/patterns",
      operationId: "getProtocolPatterns",
      summary: "A protocol's statistics and patterns over a window of days (from the stored day aggregates)",
      auth: true,
      params: protocolParams,
      query: PatternsQuery,
      responses: {
        200: {
          description: "statistics and patterns; empty when nothing was analysed yet",
          schema: ProtocolPatternsResponse,
        },
        404: {
          description: "not_found: no such document or protocol, and no analysed runs",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<unknown, z.infer<typeof PatternsQuery>>) {
        const { report, head, versions } = await protocolReport(deps, loader, request);
        const type: PatternType | undefined = request.query.type;
        const patterns = (report?.patterns ?? []).filter((p) => type === undefined || p.type === type);
        return {
          status: 200,
          body: { ...head, statistics: report?.statistics ?? null, patterns, versions },
        };
      },
    },
    {
      method: "GET",
      path: "/documents/{name}/protocols/{protocol}/recommendations",
      operationId: "getProtocolRecommendations",
      summary: "Recommendations for a protocol, each with its evidence",
      auth: true,
      params: protocolParams,
      query: RecommendationsQuery,
      responses: {
        200: {
          description: "recommendations; empty when nothing was analysed yet",
          schema: RecommendationsResponse,
        },
        404: {
          description: "not_found: no such document or protocol, and no analysed runs",
          schema: ErrorResponse,
        },
      },
      async handle(request: ApiRequest<unknown, z.infer<typeof RecommendationsQuery>>) {
        const { head, recommendations } = await protocolReport(deps, loader, request);
        return { status: 200, body: { ...head, recommendations } };
      },
    },
    {
      method: "GET",
      path: "/patterns",
      operationId: "listPatterns",
      summary: "Patterns across the tenant's analysed protocols",
      auth: true,
      query: TenantPatternsQuery,
      responses: { 200: { description: "patterns per protocol", schema: TenantPatternsResponse } },
      async handle(request: ApiRequest<unknown, z.infer<typeof TenantPatternsQuery>>) {
        const window = windowOf(request.query.window ?? DEFAULT_WINDOW_DAYS, deps.clock.now());
        const protocols = await analysis.patterns.listProtocols(request.tenant);
        const windows = await Promise.all(
          protocols.map((key) => analysis.patterns.readWindow(key, window.fromDay, window.toDay)),
        );
        const aggregates = windows.flatMap((w) => (w ? [w.aggregate] : []));
        const report = reportFromAggregates(aggregates, undefined, {
          now: new Date(deps.clock.now()),
          window: publicWindow(window),
          prices: analysis.prices,
        });
        const type = request.query.type;
        return {
          status: 200,
          body: {
            window: publicWindow(window),
            items: report.protocols.map((p) => ({
              document: p.document,
              protocol: p.protocol,
              executions: p.statistics.total,
              patterns: p.patterns.filter((pattern) => type === undefined || pattern.type === type),
            })),
          },
        };
      },
    },
    {
      method: "POST",
      path: "/analysis/runs",
      operationId: "createAnalysisRun",
      summary: "Start a batch analysis of the tenant's history (optionally one document/protocol)",
      auth: true,
      body: CreateAnalysisRunRequest,
      responses: {
        202: {
          description: "the run is queued; poll GET /analysis/runs/{id}",
          schema: CreateAnalysisRunResponse,
        },
        503: { description: "analysis_runs_unavailable: the run could not be queued", schema: ErrorResponse },
      },
      async handle(request: ApiRequest<z.infer<typeof CreateAnalysisRunRequest>>) {
        const { document, protocol, timeRangeDays } = request.body;
        // No run queue configured is MovaError `analysis_runs_unavailable` (503, its message kept).
        const run = await analysis.requestRun(request.tenant, {
          ...(document !== undefined ? { document } : {}),
          ...(protocol !== undefined ? { protocol } : {}),
          timeRangeDays: timeRangeDays ?? analysis.defaultRunDays,
        });
        const location = `/analysis/runs/${run.runId}`;
        return { status: 202, body: { runId: run.runId, status: "queued", location }, headers: { location } };
      },
    },
    {
      method: "GET",
      path: "/analysis/runs/{id}",
      operationId: "getAnalysisRun",
      summary: "An analysis run's status, progress and figures",
      auth: true,
      params: { id: RunId },
      responses: {
        200: { description: "the run", schema: AnalysisRunResponse },
        404: { description: "not_found (also for another tenant's run)", schema: ErrorResponse },
      },
      async handle(request) {
        const run = await analysis.runs.get(request.tenant, request.params.id as string);
        if (!run) throw notFound(`analysis run "${request.params.id}"`);
        const { tenant: _tenant, ...visible } = run;
        return { status: 200, body: visible };
      },
    },
  ];
}
