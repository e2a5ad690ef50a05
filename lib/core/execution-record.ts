/**
 * One execution as the history keeps it and as the analysis reads it. The same shape
 * travels in the SQS execution event, so the analysis needs no read to count a run.
 */
import * as z from "zod";
import { RUN_OUTCOMES } from "../mova/success.ts";

export const StepErrorSchema = z.object({ code: z.string(), message: z.string() });

/** A child run of a `call` or `foreach` step, as its parent's step record keeps it (core/run.ts ChildRunRecord). */
export const ChildRunRecordSchema = z.object({
  protocol: z.string(),
  index: z.number().int().min(0).optional(),
  status: z.enum(["completed", "failed", "timed_out", "waiting_input", "running", "cancelled"]),
  durationMs: z.number().min(0),
  /** The child's own history item (GET /executions/{executionId}). */
  executionId: z.string().optional(),
  error: StepErrorSchema.optional(),
  path: z.array(z.string()),
});

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
  /** The stored prompt was cut to keep the step record within a history page. */
  promptTruncated: z.boolean().optional(),
  model: z.string().optional(),
  usage: z
    .object({ promptTokens: z.number(), completionTokens: z.number(), totalTokens: z.number() })
    .optional(),
  /** US dollars; absent when the model's price is unknown. */
  costUsd: z.number().min(0).optional(),
  modelFailures: z
    .array(z.object({ model: z.string(), attempts: z.number().int().min(0), error: StepErrorSchema }))
    .optional(),
  toolCalls: z
    .array(
      z.object({
        round: z.number().int().min(1),
        callId: z.string(),
        tool: z.string(),
        arguments: z.unknown(),
        status: z.enum(["succeeded", "failed", "invalid"]),
        attempts: z.number().int().min(0),
        durationMs: z.number().min(0),
        httpStatus: z.number().optional(),
        error: StepErrorSchema.optional(),
      }),
    )
    .optional(),
  offline: z.boolean().optional(),
  toolId: z.string().optional(),
  httpStatus: z.number().optional(),
  branch: z.enum(["then", "else"]).optional(),
  branches: z.array(z.string()).optional(),
  /** `call` and `foreach` steps: each child run, in the order of the items. */
  children: z.array(ChildRunRecordSchema).optional(),
  /**
   * Present when `children` was cut to keep the step record within a history page (a wide
   * `foreach`): how many children the step had. GET /executions/{id}/children lists them all.
   */
  childCount: z.number().int().min(0).optional(),
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
  /** A redriven run: the failed or timed-out execution it goes on from. */
  redriveOf: z.string().optional(),
  /**
   * A child run (of a `call` or `foreach` step): the execution whose step ran it, that step's
   * id and visit, and (`foreach`) the item's position. A child's id is derived from these
   * (core/run.ts childExecutionId); its document and version are its parent's.
   */
  parentExecutionId: z.string().optional(),
  parentStep: z.string().optional(),
  parentVisit: z.number().int().min(1).optional(),
  itemIndex: z.number().int().min(0).optional(),
  /**
   * A child run whose step records were not kept (its parent's leg handed out more children's
   * records than the service keeps at once, see lib/services/child-runs.ts): how many step
   * records it had. `steps` is then empty; `path` still names every step.
   */
  stepsDropped: z.number().int().min(1).optional(),
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
   * A completed run's quality: `succeeded` or `unsuccessful` by its protocol's `success`
   * criteria, `unknown` when the protocol has none; absent for a run that did not complete.
   */
  outcome: z.enum(RUN_OUTCOMES).optional(),
  /** The run's final output (capped like step outputs in the history). */
  output: z.unknown().optional(),
  outputTruncated: z.boolean().optional(),
  /**
   * Present when `steps` is not the run's every step record in full (a long run's summary,
   * see record-size.ts): how many step records the run has. `steps` then holds the first of
   * them; the history keeps them all in its step pages (GET /executions/{id}/steps).
   */
  stepCount: z.number().int().min(0).optional(),
  /** Present when `path` holds only the first ids of a long run: the whole path's length. */
  pathLength: z.number().int().min(0).optional(),
  /**
   * Present when a failed or timed-out run's summary is cut: the step the run failed at (its
   * last failed step, else the last step it entered), which the cut lists may not show.
   */
  failedStepId: z.string().optional(),
  /**
   * `published` once the execution event is on the analysis queue; `pending` when it could not
   * be published (the batch analysis picks it up); `waiting` while the run waits for input
   * (nothing is published until it finishes).
   */
  analysis: z.enum(["published", "pending", "waiting"]).default("published"),
});

export type ExecutionRecord = z.infer<typeof ExecutionRecordSchema>;
