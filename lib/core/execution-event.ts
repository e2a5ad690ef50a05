/**
 * The event the API publishes to the analysis queue for each finished execution.
 * Versioned: a consumer accepts the versions it knows and rejects the rest (they end in
 * the dead-letter queue rather than being misread). See docs/events.md.
 */
import * as z from "zod";
import { ExecutionRecordSchema } from "./execution-record.ts";

export const EXECUTION_EVENT_TYPE = "mova.execution.finished";
export const EXECUTION_EVENT_VERSION = 1;

export const ExecutionEventSchema = z.object({
  type: z.literal(EXECUTION_EVENT_TYPE),
  version: z.literal(EXECUTION_EVENT_VERSION),
  /** ISO time of publishing. */
  publishedAt: z.string(),
  execution: ExecutionRecordSchema,
});

export type ExecutionEvent = z.infer<typeof ExecutionEventSchema>;
