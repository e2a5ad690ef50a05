/**
 * The analysis over a stream of execution records: one pass, one aggregate per protocol,
 * memory bounded by the aggregates and never by the history. Records outside the window
 * (by `startedAt`) or not matching the tenant/document/protocol filter are read and dropped.
 */
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { MovaDocument } from "../mova/schema.ts";
import {
  type ProtocolAggregate,
  aggregateKeyOf,
  countExecution,
  createAggregate,
  mergeInto,
  recordKeyOf,
} from "./aggregate.ts";
import { MovaError } from "../errors.ts";
import { type Pattern, type PatternOptions, extractPatterns } from "./patterns.ts";
import { type Recommendation, type RecommendationOptions, recommend } from "./recommendations.ts";
import { type ExecutionStatistics, computeStatistics } from "./statistics.ts";
import { parseTimestamp } from "./time.ts";
import type { PriceTable } from "./cost.ts";

const DEFAULT_WINDOW_DAYS = 30;
const DAY_MS = 86_400_000;

/** Finds the document a protocol belongs to, for the document-aware recommendations. */
export type DocumentLookup = (name: string, tenant: string) => MovaDocument | undefined;

interface AnalysisWindow {
  from: string;
  to: string;
  days: number;
}

interface AggregateOptions {
  tenant?: string;
  document?: string;
  protocol?: string;
  /** Default 30. */
  timeRangeDays?: number;
  /** The end of the window; default the current time. */
  now?: Date;
  /** One aggregate per document version (default: per protocol, every version in one). */
  byVersion?: boolean;
}

interface AnalyzeOptions extends AggregateOptions {
  documents?: DocumentLookup;
  prices?: PriceTable;
  patterns?: PatternOptions;
  recommendations?: RecommendationOptions;
}

interface RecordCounts {
  read: number;
  analysed: number;
  /** Started before the window, after its end, or at an unreadable time. */
  outsideWindow: number;
  /** Another tenant, document or protocol than asked for. */
  filteredOut: number;
}

interface AggregationResult {
  window: AnalysisWindow;
  aggregates: ProtocolAggregate[];
  records: RecordCounts;
}

export interface ProtocolReport {
  tenant: string;
  document: string;
  protocol: string;
  statistics: ExecutionStatistics;
  /** Each document version's statistics, when the report was made per version. */
  versions?: Array<{ version: number; statistics: ExecutionStatistics }>;
  patterns: Pattern[];
  recommendations: Recommendation[];
}

export interface AnalysisReport {
  generatedAt: string;
  window: AnalysisWindow;
  /** Present when the report was computed from records (not from stored aggregates). */
  records?: RecordCounts;
  protocols: ProtocolReport[];
}

function analysisWindow(timeRangeDays: number = DEFAULT_WINDOW_DAYS, now: Date = new Date()): AnalysisWindow {
  if (!(Number.isFinite(timeRangeDays) && timeRangeDays > 0)) {
    throw new MovaError("invalid_window", `timeRangeDays must be a number > 0, got ${timeRangeDays}`);
  }
  const to = now.getTime();
  if (Number.isNaN(to)) throw new MovaError("invalid_window", "now is not a valid date");
  return {
    from: new Date(to - timeRangeDays * DAY_MS).toISOString(),
    to: new Date(to).toISOString(),
    days: timeRangeDays,
  };
}

/** Streams the records into one aggregate per tenant/document/protocol. */
export async function aggregateExecutions(
  records: AsyncIterable<ExecutionRecord> | Iterable<ExecutionRecord>,
  options: AggregateOptions = {},
): Promise<AggregationResult> {
  const window = analysisWindow(options.timeRangeDays, options.now);
  const from = Date.parse(window.from);
  const to = Date.parse(window.to);
  const aggregates = new Map<string, ProtocolAggregate>();
  /**
   * The same aggregates by tenant, document, protocol and version (undefined when not by
   * version): lookups of short strings and a number cost less than building each record's
   * joined key and hashing it (`aggregates` stays the authority: an aggregate is found there
   * first, then remembered here).
   */
  const byTenant = new Map<string, Map<string, Map<string, Map<number | undefined, ProtocolAggregate>>>>();
  const counts: RecordCounts = { read: 0, analysed: 0, outsideWindow: 0, filteredOut: 0 };
  const byVersion = options.byVersion === true;
  let last: ProtocolAggregate | undefined;

  const lookUp = (record: ExecutionRecord): ProtocolAggregate => {
    let byDocument = byTenant.get(record.tenant);
    if (byDocument === undefined) {
      byDocument = new Map();
      byTenant.set(record.tenant, byDocument);
    }
    let byProtocol = byDocument.get(record.document);
    if (byProtocol === undefined) {
      byProtocol = new Map();
      byDocument.set(record.document, byProtocol);
    }
    let versions = byProtocol.get(record.protocol);
    if (versions === undefined) {
      versions = new Map();
      byProtocol.set(record.protocol, versions);
    }
    const version = byVersion ? record.documentVersion : undefined;
    let aggregate = versions.get(version);
    if (aggregate === undefined) {
      const aggregateKey = byVersion
        ? recordKeyOf(record)
        : { tenant: record.tenant, document: record.document, protocol: record.protocol };
      const key = aggregateKeyOf(aggregateKey);
      aggregate = aggregates.get(key);
      if (aggregate === undefined) {
        aggregate = createAggregate(aggregateKey);
        aggregates.set(key, aggregate);
      }
      versions.set(version, aggregate);
    }
    return aggregate;
  };

  const take = (record: ExecutionRecord): void => {
    counts.read += 1;
    if (
      (options.tenant !== undefined && record.tenant !== options.tenant) ||
      (options.document !== undefined && record.document !== options.document) ||
      (options.protocol !== undefined && record.protocol !== options.protocol)
    ) {
      counts.filteredOut += 1;
      return;
    }
    const started = parseTimestamp(record.startedAt);
    if (!(started >= from && started <= to)) {
      counts.outsideWindow += 1;
      return;
    }
    // Histories come grouped by protocol, so the previous aggregate is usually the one.
    let aggregate = last;
    if (
      aggregate === undefined ||
      aggregate.protocol !== record.protocol ||
      aggregate.document !== record.document ||
      aggregate.tenant !== record.tenant ||
      (byVersion && aggregate.version !== record.documentVersion)
    ) {
      aggregate = lookUp(record);
      last = aggregate;
    }
    countExecution(aggregate, record, started);
    counts.analysed += 1;
  };

  if (Symbol.asyncIterator in records) for await (const record of records) take(record);
  else for (const record of records) take(record);

  return { window, aggregates: [...aggregates.values()], records: counts };
}

interface ReportOptions {
  now?: Date;
  /** Default: from the earliest start to the latest finish of the aggregates. */
  window?: AnalysisWindow;
  patterns?: PatternOptions;
  recommendations?: RecommendationOptions;
  /** Prices the tokens (see cost.ts); without it, every cost is unknown. */
  prices?: PriceTable;
}

/** The report of each aggregate, protocols ordered by tenant, document, protocol. */
export function reportFromAggregates(
  aggregates: Iterable<ProtocolAggregate>,
  documents?: DocumentLookup,
  options: ReportOptions = {},
): AnalysisReport {
  const list = [...aggregates].sort(
    (a, b) =>
      compare(a.tenant, b.tenant) || compare(a.document, b.document) || compare(a.protocol, b.protocol),
  );
  const now = options.now ?? new Date();
  return {
    generatedAt: now.toISOString(),
    window: options.window ?? spanOf(list, now),
    protocols: list.map((aggregate) => {
      const document = documents?.(aggregate.document, aggregate.tenant);
      return {
        tenant: aggregate.tenant,
        document: aggregate.document,
        protocol: aggregate.protocol,
        statistics: computeStatistics(aggregate, document, options.prices),
        patterns: extractPatterns(aggregate, options.patterns),
        recommendations: recommend(aggregate, document, options.recommendations),
      };
    }),
  };
}

/**
 * Every version's aggregate of each protocol merged into one per protocol (version absent),
 * in the order their protocols first appear.
 */
export function mergeVersions(aggregates: Iterable<ProtocolAggregate>): ProtocolAggregate[] {
  const merged = new Map<string, ProtocolAggregate>();
  for (const aggregate of aggregates) {
    const key = { tenant: aggregate.tenant, document: aggregate.document, protocol: aggregate.protocol };
    const id = aggregateKeyOf(key);
    let target = merged.get(id);
    if (!target) {
      target = createAggregate(key);
      merged.set(id, target);
    }
    mergeInto(target, aggregate);
  }
  return [...merged.values()];
}

/** Streams the records and reports on every protocol found in the window, overall and per document version. */
export async function analyzeExecutions(
  records: AsyncIterable<ExecutionRecord> | Iterable<ExecutionRecord>,
  options: AnalyzeOptions = {},
): Promise<AnalysisReport> {
  const result = await aggregateExecutions(records, { ...options, byVersion: true });
  const report = reportFromAggregates(mergeVersions(result.aggregates), options.documents, {
    now: options.now,
    window: result.window,
    patterns: options.patterns,
    recommendations: options.recommendations,
    ...(options.prices ? { prices: options.prices } : {}),
  });
  for (const protocol of report.protocols) {
    const versions = result.aggregates
      .filter(
        (a) =>
          a.tenant === protocol.tenant &&
          a.document === protocol.document &&
          a.protocol === protocol.protocol,
      )
      .sort((a, b) => (a.version ?? 0) - (b.version ?? 0));
    const document = options.documents?.(protocol.document, protocol.tenant);
    protocol.versions = versions.map((a) => ({
      version: a.version ?? 0,
      statistics: computeStatistics(a, document, options.prices),
    }));
  }
  return { ...report, records: result.records };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function spanOf(aggregates: ProtocolAggregate[], now: Date): AnalysisWindow {
  let from: number | undefined;
  let to: number | undefined;
  for (const a of aggregates) {
    if (a.firstStartedAt !== undefined && (from === undefined || a.firstStartedAt < from))
      from = a.firstStartedAt;
    if (a.lastFinishedAt !== undefined && (to === undefined || a.lastFinishedAt > to)) to = a.lastFinishedAt;
  }
  const end = to ?? now.getTime();
  const start = from ?? end;
  return {
    from: new Date(start).toISOString(),
    to: new Date(end).toISOString(),
    days: Math.max(0, Math.round(((end - start) / DAY_MS) * 100) / 100),
  };
}
