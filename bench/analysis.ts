/**
 * 3. Analysis throughput: a synthetic history (one million execution records in the full run,
 * 100,000 in the quick one; eight step records each, whatever the run's outcome: see
 * support/synthetic-history.ts) streamed through `analyzeExecutions`
 * (aggregation, statistics, pattern extraction, recommendations) in a fresh Node process,
 * whose peak resident memory is read there. Also the incremental merge of an SQS batch of
 * 10 records into a stored day aggregate, as the analysis function computes it.
 */
import { fileURLToPath } from "node:url";
import {
  type ProtocolAggregate,
  addExecution,
  aggregateFromJSON,
  aggregateToJSON,
  createAggregate,
  mergeInto,
} from "../lib/analysis/aggregate.ts";
import { aggregateExecutions } from "../lib/analysis/analyze.ts";
import type { ExecutionRecord } from "../lib/core/execution-record.ts";
import { median, percentile, round } from "./lib/report.ts";
import type { Benchmark, BenchContext } from "./lib/types.ts";
import { runChild } from "./support/child.ts";
import { syntheticHistory } from "./support/synthetic-history.ts";

export interface AnalysisResult {
  executions: number;
  stepsPerExecution: number;
  seconds: number;
  executionsPerSecond: number;
  peakRssMb: number;
  incrementalMergeUs: number;
}

interface ChildFigures {
  executions: number;
  plannedStepsPerExecution: number;
  meanStepRecords: number;
  seconds: number;
  generatorSecondsEstimate: number;
  peakRssMb: number;
  rssBeforeMb: number;
  protocols: number;
  patterns: number;
  recommendations: number;
}

interface Codec {
  encode(aggregate: ProtocolAggregate): Uint8Array | string;
  decode(stored: Uint8Array | string): ProtocolAggregate;
  name: string;
}

/** The pattern store's own codec (gzipped JSON) when it is in the tree, else plain JSON. */
async function storedCodec(): Promise<Codec> {
  try {
    const store = await import("../lib/adapters/dynamodb/pattern-store.ts");
    return {
      encode: store.encodeAggregate,
      decode: (stored) => store.decodeAggregate(stored as Uint8Array),
      name: "encodeAggregate/decodeAggregate of lib/adapters/dynamodb/pattern-store.ts (gzipped JSON)",
    };
  } catch {
    return {
      encode: (aggregate) => JSON.stringify(aggregateToJSON(aggregate)),
      decode: (stored) => aggregateFromJSON(JSON.parse(stored as string)),
      name: "plain JSON (the pattern store's codec was not in the tree)",
    };
  }
}

/** µs per merge of a 10-record batch into the stored aggregate: decode, count the batch, merge, encode. */
async function measureIncrementalMerge(quick: boolean) {
  const endMs = Date.parse("2025-11-20T00:00:00.000Z");
  const key = { tenant: "acme", document: "support", protocol: "triage" };
  const stored = await aggregateExecutions(syntheticHistory({ count: 50_000, endMs, days: 1 }), {
    ...key,
    now: new Date(endMs),
    timeRangeDays: 2,
  });
  const bucket = stored.aggregates[0];
  if (!bucket) throw new Error("no stored aggregate to merge into");
  const batches: ExecutionRecord[][] = [];
  let batch: ExecutionRecord[] = [];
  for (const record of syntheticHistory({ count: 40_000, endMs, days: 1, seed: 99 })) {
    if (record.tenant !== key.tenant || record.document !== key.document || record.protocol !== key.protocol)
      continue;
    batch.push(record);
    if (batch.length === 10) {
      batches.push(batch);
      batch = [];
    }
  }
  const codec = await storedCodec();
  const bytes = codec.encode(bucket);
  const full: number[] = [];
  const computeOnly: number[] = [];
  const iterations = quick ? 300 : 1000;
  for (let index = 0; index < iterations + 200; index += 1) {
    const records = batches[index % batches.length] as ExecutionRecord[];
    const started = performance.now();
    const current = codec.decode(bytes);
    const decoded = performance.now();
    const delta = createAggregate(key);
    for (const record of records) addExecution(delta, record);
    // As mergeIntoBucket does: the aggregate just decoded is merged into in place.
    const next = mergeInto(current, delta);
    const merged = performance.now();
    codec.encode(next);
    const ended = performance.now();
    if (index >= 200) {
      full.push((ended - started) * 1000);
      computeOnly.push((merged - decoded) * 1000);
    }
  }
  return {
    mergeUs: median(computeOnly),
    mergeP99Us: percentile(computeOnly, 99),
    withCodecUs: median(full),
    storedExecutions: bucket.executions,
    storedBytes: typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.byteLength,
    codec: codec.name,
  };
}

export const analysisBenchmark: Benchmark<AnalysisResult> = {
  name: "analysis",
  title: "Analysis throughput: a synthetic history streamed through analyzeExecutions in a fresh process",
  async run(context: BenchContext) {
    const records = context.quick ? 100_000 : 1_000_000;
    const repeats = context.quick ? 1 : 3;
    const child = fileURLToPath(new URL("./analysis-child.ts", import.meta.url));
    const runs: ChildFigures[] = [];
    for (let repeat = 0; repeat < repeats; repeat += 1) {
      const figures = await runChild<ChildFigures>(child, { BENCH_ANALYSIS_RECORDS: String(records) });
      context.log(
        `analysis ${records}: ${round(figures.seconds, 2)} s, peak RSS ${round(figures.peakRssMb, 1)} MB (generator ≈ ${round(figures.generatorSecondsEstimate, 2)} s)`,
      );
      runs.push(figures);
    }
    const seconds = median(runs.map((run) => run.seconds));
    const peakRssMb = Math.max(...runs.map((run) => run.peakRssMb));
    const merge = await measureIncrementalMerge(context.quick);
    const first = runs[0] as ChildFigures;
    const result: AnalysisResult = {
      executions: records,
      stepsPerExecution: round(first.meanStepRecords, 2),
      seconds: round(seconds, 2),
      executionsPerSecond: Math.round(records / seconds),
      peakRssMb: round(peakRssMb, 1),
      incrementalMergeUs: round(merge.mergeUs, 1),
    };
    return {
      result,
      table: {
        headers: ["figure", "value", "goal"],
        rows: [
          ["executions", result.executions, null],
          ["step records per execution (mean)", result.stepsPerExecution, null],
          ["seconds (median of runs)", result.seconds, "< 10"],
          ["executions per second", result.executionsPerSecond, null],
          ["peak RSS MB (worst run)", result.peakRssMb, "< 300"],
          ["incremental merge of 10 records, µs (median)", result.incrementalMergeUs, "≪ 1000"],
          ["  same, p99 µs", round(merge.mergeP99Us, 1), null],
          ["  with decode + encode of the stored aggregate, µs", round(merge.withCodecUs, 1), null],
        ],
      },
      notes: [
        `${repeats} run(s) of ${records} records in a fresh Node process each (tsx loader included: RSS before the work ≈ ${round(first.rssBeforeMb, 0)} MB); seconds include generating the records lazily (≈ ${round(first.generatorSecondsEstimate, 2)} s of them, estimated on a tenth of the records)`,
        `${round(first.meanStepRecords, 2)} step records per execution (${first.plannedStepsPerExecution} whatever the outcome: failed and timed-out runs stop at their eighth record, after the review loop or at the last step; waiting runs wait after it); ${first.protocols} protocols, ${first.patterns} patterns`,
        `incremental merge: a delta aggregate of 10 records merged into a stored day aggregate of ${merge.storedExecutions} executions (${merge.storedBytes} bytes stored); the figure is the computation (count + merge); decode/encode with ${merge.codec}`,
      ],
    };
  },
};
