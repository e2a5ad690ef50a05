/**
 * One execution as the history keeps it and as the analysis reads it. The same shape
 * travels in the SQS execution event, so the analysis needs no read to count a run.
 */
import * as z from "zod";

export const StepErrorSchema = z.object({ code: z.string(), message: z.string() });

export const StepRecordSchema = z.object({
  id: z.string(),
  action: z.string(),
  status: z.enum(["succeeded", "failed", "skipped"]),
  attempts: z.number().int().min(0),
  startedAt: z.string(),
  durationMs: z.number().min(0),
  error: StepErrorSchema.optional(),
  output: z.unknown().optional(),
  /** The stored output was cut to the history's cap (HISTORY_OUTPUT_MAX_BYTES) or dropped to fit a message. */
  outputTruncated: z.boolean().optional(),
  outputVariable: z.string().optional(),
  prompt: z.string().optional(),
  model: z.string().optional(),
  usage: z
    .object({ promptTokens: z.number(), completionTokens: z.number(), totalTokens: z.number() })
    .optional(),
  offline: z.boolean().optional(),
  toolId: z.string().optional(),
  httpStatus: z.number().optional(),
  branch: z.enum(["then", "else"]).optional(),
  branches: z.array(z.string()).optional(),
});

const TRIGGERS = ["api", "session", "event", "cli"] as const;

export const ExecutionRecordSchema = z.object({
  tenant: z.string().min(1),
  executionId: z.string().min(1),
  document: z.string().min(1),
  documentVersion: z.number().int().min(0),
  protocol: z.string().min(1),
  sessionId: z.string().optional(),
  trigger: z.enum(TRIGGERS),
  intent: z.string().optional(),
  /** `running` (going on in the background) and `cancelled` are the durable runs' (MOVA.md). */
  status: z.enum(["completed", "failed", "timed_out", "waiting_input", "running", "cancelled"]),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number().min(0),
  path: z.array(z.string()),
  steps: z.array(StepRecordSchema),
  unresolved: z.array(z.string()).default([]),
  offline: z.boolean().default(false),
  error: StepErrorSchema.optional(),
  /**
   * `published` once the execution event is on the analysis queue; `pending` when it could not
   * be published (the batch analysis picks it up); `waiting` while the run waits for input
   * (nothing is published until it finishes).
   */
  analysis: z.enum(["published", "pending", "waiting"]).default("published"),
});

export type ExecutionRecord = z.infer<typeof ExecutionRecordSchema>;
