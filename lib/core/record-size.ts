/**
 * Keeping an execution record within bounds: each step output capped for the history, and
 * the whole record shrunk (outputs, then prompts, dropped) to fit a DynamoDB item or an SQS
 * message. A cut is always marked (`outputTruncated`), never silent.
 */
import type { ExecutionRecord } from "./execution-record.ts";

export const utf8Bytes = (text: string) => Buffer.byteLength(text, "utf8");

/** The first `maxBytes` bytes of `text`, never splitting a character. */
function cutUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back off to the start of a character (continuation bytes are 10xxxxxx).
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

/** Step outputs whose JSON is over `maxBytes` become a string of their first `maxBytes` bytes. */
export function capStepOutputs(record: ExecutionRecord, maxBytes: number): ExecutionRecord {
  return {
    ...record,
    steps: record.steps.map((step) => {
      if (step.output === undefined) return step;
      const json = JSON.stringify(step.output);
      if (json === undefined || utf8Bytes(json) <= maxBytes) return step;
      return { ...step, output: cutUtf8(json, maxBytes), outputTruncated: true };
    }),
  };
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
  if (measure(withoutOutputs) <= maxBytes) return withoutOutputs;
  return {
    ...withoutOutputs,
    steps: withoutOutputs.steps.map((step) => {
      const { prompt: _dropped, ...rest } = step;
      return rest;
    }),
  };
}
