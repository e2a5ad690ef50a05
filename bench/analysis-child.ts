/**
 * The analysis benchmark's worker, run in a fresh Node process so that its peak resident
 * memory is its own: streams a synthetic history (eight step records per execution) through
 * `analyzeExecutions` (aggregation, statistics, pattern extraction, recommendations) and
 * sends the figures to the parent.
 */
import { analyzeExecutions } from "../lib/analysis/analyze.ts";
import { STEPS_PER_EXECUTION, syntheticHistory } from "./support/synthetic-history.ts";

const count = Number(process.env.BENCH_ANALYSIS_RECORDS ?? "1000000");
const endMs = Date.parse("2025-11-20T00:00:00.000Z");
const rssBeforeMb = process.memoryUsage().rss / 1024 / 1024;

const started = performance.now();
const report = await analyzeExecutions(syntheticHistory({ count, endMs, days: 20 }), {
  now: new Date(endMs),
  timeRangeDays: 30,
});
const seconds = (performance.now() - started) / 1000;
if (report.records?.analysed !== count)
  throw new Error(`analysed ${report.records?.analysed} of ${count} records`);
const patterns = report.protocols.reduce((sum, protocol) => sum + protocol.patterns.length, 0);
if (report.protocols.length === 0 || patterns === 0)
  throw new Error("the analysis found no protocols or patterns");

// The generator's own share and the mean number of step records, measured on the first tenth
// of the same records after the analysis (counting during the analysis would slow it down).
const sample = Math.max(1, Math.floor(count / 10));
const generatorStarted = performance.now();
let steps = 0;
for (const record of syntheticHistory({ count: sample, endMs, days: 20 })) steps += record.steps.length;
const generatorSeconds = ((performance.now() - generatorStarted) / 1000) * (count / sample);

process.send?.({
  executions: count,
  plannedStepsPerExecution: STEPS_PER_EXECUTION,
  meanStepRecords: steps / sample,
  seconds,
  generatorSecondsEstimate: generatorSeconds,
  peakRssMb: process.resourceUsage().maxRSS / 1024,
  rssBeforeMb,
  protocols: report.protocols.length,
  patterns,
  recommendations: report.protocols.reduce((sum, protocol) => sum + protocol.recommendations.length, 0),
});
