/**
 * Keeping an execution record within bounds: each output capped for the history, each step
 * record fitted to a history page, a long run summarised (the first steps and path ids that
 * fit, with the whole run's counts), and a record shrunk (outputs, then prompts, dropped) to
 * fit a DynamoDB item or an SQS message. A cut is always marked, never silent.
 *
 * The summary is what the history's execution item and the execution event both carry, and
 * what the analysis counts: its cut is measured without outputs (which the analysis does not
 * read and the two places cap differently), so that both hold the same steps and prompts,
 * and the stream and the batch analysis count a long run alike.
 */
import type { ExecutionRecord } from "./execution-record.ts";

type StepRecord = ExecutionRecord["steps"][number];

export const utf8Bytes = (text: string) => Buffer.byteLength(text, "utf8");

const jsonBytes = (value: unknown) => utf8Bytes(JSON.stringify(value) ?? "");

/** A step record's JSON is at most this, so that one always fits a history page. */
export const MAX_STEP_BYTES = 100_000;
/** A history page of step records holds at most this many steps, and this much JSON. */
export const PAGE_MAX_STEPS = 100;
export const PAGE_MAX_BYTES = 300_000;
/**
 * A summary's JSON without outputs is at most this: with the event's envelope it fits an SQS
 * message (256 KB), and with its step outputs capped, or else dropped, a DynamoDB item.
 */
export const SUMMARY_MAX_BYTES = 200_000;
/** A summary's path holds at most this many ids, and this much JSON. */
export const SUMMARY_MAX_PATH_IDS = 500;
const SUMMARY_MAX_PATH_BYTES = 20_000;
/** An error message longer than this is cut when a step record must be fitted. */
const FITTED_ERROR_MESSAGE_BYTES = 1024;

/** The first `maxBytes` bytes of `text`, never splitting a character. */
function cutUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  let end = Math.max(0, maxBytes);
  // Back off to the start of a character (continuation bytes are 10xxxxxx).
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

/** An output whose JSON is over `maxBytes` as a string of its first `maxBytes` bytes, else undefined. */
function cutOutput(output: unknown, maxBytes: number): string | undefined {
  if (output === undefined) return undefined;
  const json = JSON.stringify(output);
  if (json === undefined || utf8Bytes(json) <= maxBytes) return undefined;
  return cutUtf8(json, maxBytes);
}

/**
 * Step outputs and the run's output whose JSON is over `maxBytes` become a string of their
 * first `maxBytes` bytes, marked `outputTruncated`.
 */
export function capOutputs(record: ExecutionRecord, maxBytes: number): ExecutionRecord {
  const capped: ExecutionRecord = {
    ...record,
    steps: record.steps.map((step) => {
      const cut = cutOutput(step.output, maxBytes);
      return cut === undefined ? step : { ...step, output: cut, outputTruncated: true };
    }),
  };
  const cut = cutOutput(record.output, maxBytes);
  if (cut !== undefined) {
    capped.output = cut;
    capped.outputTruncated = true;
  }
  return capped;
}

/**
 * A step record whose JSON is at most `maxBytes`: its output dropped first, then its prompt
 * cut (`promptTruncated`), then its error message cut. What is kept of the prompt depends only
 * on the step without its output, so a step fits the same way whatever its output's cap.
 */
export function fitStep(step: StepRecord, maxBytes = MAX_STEP_BYTES): StepRecord {
  if (jsonBytes(step) <= maxBytes) return step;
  let fitted: StepRecord = step;
  if (fitted.output !== undefined) {
    const { output: _dropped, ...rest } = fitted;
    fitted = { ...rest, outputTruncated: true };
  }
  let bytes = jsonBytes(fitted);
  const prompt = fitted.prompt;
  if (bytes > maxBytes && prompt !== undefined) {
    // JSON escapes may make the prompt's JSON longer than its text: halve until it fits.
    let keep = Math.max(0, utf8Bytes(prompt) - (bytes - maxBytes) - 16);
    for (;;) {
      fitted = { ...fitted, prompt: cutUtf8(prompt, keep), promptTruncated: true };
      bytes = jsonBytes(fitted);
      if (bytes <= maxBytes || keep === 0) break;
      keep = Math.floor(keep / 2);
    }
  }
  if (bytes > maxBytes && fitted.error !== undefined) {
    fitted = {
      ...fitted,
      error: { ...fitted.error, message: cutUtf8(fitted.error.message, FITTED_ERROR_MESSAGE_BYTES) },
    };
    bytes = jsonBytes(fitted);
  }
  if (bytes > maxBytes && fitted.children !== undefined) fitted = fitChildren(fitted, maxBytes);
  return fitted;
}

/**
 * A wide `foreach` step's record over `maxBytes`: its children without their paths (each
 * child's own history item has it), then only the first children that fit, `childCount`
 * saying how many there were (GET /executions/{id}/children lists them all).
 */
function fitChildren(step: StepRecord, maxBytes: number): StepRecord {
  const all = step.children ?? [];
  const children = all.map((child) => ({ ...child, path: [] }));
  const withoutPaths: StepRecord = { ...step, children };
  let bytes = jsonBytes(withoutPaths);
  if (bytes <= maxBytes) return withoutPaths;
  const { children: _dropped, ...rest } = withoutPaths;
  bytes = jsonBytes({ ...rest, children: [], childCount: all.length });
  let kept = 0;
  while (kept < children.length) {
    const size = jsonBytes(children[kept]) + 1;
    if (bytes + size > maxBytes) break;
    bytes += size;
    kept++;
  }
  return { ...rest, children: children.slice(0, kept), childCount: all.length };
}

/** A step's JSON as the summary measures it: without its output (and whether that was cut). */
function bytesWithoutOutput(step: StepRecord): number {
  if (step.output === undefined && step.outputTruncated === undefined) return jsonBytes(step);
  const { output: _output, outputTruncated: _truncated, ...rest } = step;
  return jsonBytes(rest);
}

/** Where the analysis puts a failure: the last failed step, else the last step entered. */
function failedAt(record: ExecutionRecord): string | undefined {
  for (let i = record.steps.length - 1; i >= 0; i--) {
    if (record.steps[i]!.status === "failed") return record.steps[i]!.id;
  }
  return record.path[record.path.length - 1];
}

/**
 * The run's summary: every step record fitted (fitStep), and when the record without outputs
 * is over SUMMARY_MAX_BYTES or its path over SUMMARY_MAX_PATH_IDS, only the first step records
 * and path ids that fit, with `stepCount`, `pathLength` and (failed or timed out)
 * `failedStepId` saying what the cut left out. A record that fits keeps every step.
 * Deterministic: the same record always gives the same summary.
 */
export function summarizeRecord(record: ExecutionRecord): ExecutionRecord {
  const steps = record.steps.map((step) => fitStep(step));
  let pathIds = 0;
  let pathBytes = 2;
  while (pathIds < record.path.length && pathIds < SUMMARY_MAX_PATH_IDS) {
    const bytes = jsonBytes(record.path[pathIds]) + 1;
    if (pathBytes + bytes > SUMMARY_MAX_PATH_BYTES) break;
    pathBytes += bytes;
    pathIds++;
  }
  const path = pathIds < record.path.length ? record.path.slice(0, pathIds) : record.path;
  const failedStepId =
    record.status === "failed" || record.status === "timed_out" ? failedAt(record) : undefined;
  const { output: _output, outputTruncated: _truncated, ...rest } = record;
  // Measured with every summary field present, so that a record is cut or not whatever it holds.
  let budget =
    SUMMARY_MAX_BYTES -
    jsonBytes({
      ...rest,
      steps: [],
      path,
      stepCount: record.steps.length,
      pathLength: record.path.length,
      failedStepId,
    });
  let kept = 0;
  for (const step of steps) {
    const bytes = bytesWithoutOutput(step) + 1;
    if (bytes > budget) break;
    budget -= bytes;
    kept++;
  }
  if (kept === steps.length && path === record.path) return { ...record, steps };
  const summary: ExecutionRecord = {
    ...record,
    steps: kept === steps.length ? steps : steps.slice(0, kept),
    path,
  };
  if (kept < steps.length) summary.stepCount = steps.length;
  if (path !== record.path) summary.pathLength = record.path.length;
  if (failedStepId !== undefined) summary.failedStepId = failedStepId;
  return summary;
}

/**
 * Shrinks a record until `measure(record)` is at most `maxBytes`: outputs dropped first,
 * then prompts. Returns the record as small as it gets; the caller decides if that fits.
 */
export function shrinkRecord(
  record: ExecutionRecord,
  maxBytes: number,
  measure: (record: ExecutionRecord) => number,
): ExecutionRecord {
  if (measure(record) <= maxBytes) return record;
  const withoutOutputs: ExecutionRecord = {
    ...record,
    steps: record.steps.map((step) => {
      if (step.output === undefined) return step;
      const { output: _dropped, ...rest } = step;
      return { ...rest, outputTruncated: true };
    }),
  };
  if (record.output !== undefined) {
    delete withoutOutputs.output;
    withoutOutputs.outputTruncated = true;
  }
  if (measure(withoutOutputs) <= maxBytes) return withoutOutputs;
  return {
    ...withoutOutputs,
    steps: withoutOutputs.steps.map((step) => {
      const { prompt: _dropped, ...rest } = step;
      return rest;
    }),
  };
}

/** One page of a run's step records: the index of its first step, the steps, their JSON. */
export interface StepPageContent {
  first: number;
  steps: StepRecord[];
  json: string;
}

/**
 * A run's step records (fitted) in pages of at most PAGE_MAX_STEPS steps and PAGE_MAX_BYTES
 * of JSON, filled in order. Appending steps changes only the last page and adds new ones, so
 * a run's pages stay as they were while it goes on.
 */
export function pageSteps(steps: readonly StepRecord[]): StepPageContent[] {
  const pages: StepPageContent[] = [];
  let current: string[] = [];
  let currentSteps: StepRecord[] = [];
  let bytes = 2;
  let first = 0;
  const close = () => {
    pages.push({ first, steps: currentSteps, json: `[${current.join(",")}]` });
    first += currentSteps.length;
    current = [];
    currentSteps = [];
    bytes = 2;
  };
  for (const step of steps) {
    const json = JSON.stringify(step);
    const size = utf8Bytes(json) + 1;
    if (current.length > 0 && (current.length === PAGE_MAX_STEPS || bytes + size > PAGE_MAX_BYTES)) close();
    current.push(json);
    currentSteps.push(step);
    bytes += size;
  }
  if (current.length > 0) close();
  return pages;
}
