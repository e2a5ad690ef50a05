/**
 * The API's request and response schemas. Handlers validate with these, and
 * `GET /openapi.json` is generated from these same schemas, so the two cannot drift.
 */
import * as z from "zod";
import { ExecutionRecordSchema, StepErrorSchema, StepRecordSchema } from "../core/execution-record.ts";
import { EVENT_NAME } from "../mova/schema.ts";

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z
        .string()
        .describe("machine-readable error code, e.g. invalid_request, not_found, session_conflict"),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: "Error" });

const ValidationIssue = z.object({ code: z.string(), path: z.string(), message: z.string() });

export const DocumentName = z.string().regex(NAME_PATTERN, "letters, digits, '.', '_' or '-', at most 128");
export const SessionId = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/);
/**
 * An execution's id: a run's (`ex_…`), or a child run's derived from its parent's
 * (`<parent>~<step>.<visit>[~<index>]`, nested as deep as children nest): URL-safe as it is.
 */
export const ExecutionId = z.string().regex(/^[A-Za-z0-9_.~-]{1,1024}$/);

/** The body of PUT /documents/{name}: a MOVA document (validated by the MOVA validator, not here). */
export const PutDocumentRequest = z
  .record(z.string(), z.unknown())
  .describe("a MOVA document (see schema/mova.schema.json); validated by the MOVA validator")
  .meta({ id: "MovaDocumentBody" });

const DocumentSummary = z.object({
  name: z.string(),
  version: z.number().int(),
  hash: z.string().describe("sha256 hex of the canonical JSON"),
  updatedAt: z.string(),
});

export const PutDocumentResponse = z
  .object({
    name: z.string(),
    version: z.number().int(),
    hash: z.string(),
    warnings: z.array(ValidationIssue),
  })
  .meta({ id: "PutDocumentResponse" });

export const DocumentResponse = DocumentSummary.extend({ document: z.unknown() }).meta({ id: "Document" });
export const DocumentListResponse = z
  .object({ items: z.array(DocumentSummary) })
  .meta({ id: "DocumentList" });

export const CreateSessionRequest = z
  .strictObject({
    document: DocumentName,
    userId: z.string().min(1).max(256),
    data: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: "CreateSessionRequest" });

export const CreateSessionResponse = z
  .object({ sessionId: z.string(), expiresAt: z.string() })
  .meta({ id: "CreateSessionResponse" });

export const SessionResponse = z
  .object({
    sessionId: z.string(),
    document: z.string(),
    documentVersion: z.number().int(),
    userId: z.string(),
    data: z.record(z.string(), z.unknown()),
    intent: z.string().nullable(),
    waiting: z
      .object({ protocol: z.string(), stepId: z.string(), executionId: z.string().nullable() })
      .nullable()
      .describe("the run waiting for the user's next message, if any"),
    createdAt: z.string(),
    updatedAt: z.string(),
    expiresAt: z.string(),
    version: z.number().int(),
  })
  .meta({ id: "Session" });

export const MessageRequest = z
  .strictObject({ text: z.string().min(1).max(8192) })
  .meta({ id: "MessageRequest" });

const MESSAGE_STATUSES = [
  "completed",
  "failed",
  "timed_out",
  "waiting_input",
  "running",
  "cancelled",
  "responded",
  "not_understood",
] as const;

export const MessageResponse = z
  .object({
    status: z
      .enum(MESSAGE_STATUSES)
      .describe(
        "a run status; `responded` when the intent has no protocol (its response_template is the reply); `not_understood` when no intent matched",
      ),
    replies: z.array(z.string()),
    intent: z.string().nullable(),
    executionId: z.string().nullable(),
    output: z.unknown().optional(),
    waitingFor: z.object({ stepId: z.string(), prompt: z.string(), variable: z.string() }).optional(),
    error: StepErrorSchema.optional(),
  })
  .meta({ id: "MessageResponse" });

export const CreateExecutionRequest = z
  .strictObject({
    document: DocumentName,
    protocol: z.string().min(1),
    variables: z.record(z.string(), z.unknown()).optional(),
    sessionId: SessionId.optional(),
  })
  .meta({ id: "CreateExecutionRequest" });

const RUN_STATUSES = ["completed", "failed", "waiting_input", "timed_out", "running", "cancelled"] as const;

const STEPS_CURSOR =
  "present when `steps` holds only the first of the run's step records: pass as `cursor` to GET /executions/{id}/steps for the rest";

export const ExecutionResponse = z
  .object({
    executionId: z.string(),
    status: z.enum(RUN_STATUSES),
    protocol: z.string(),
    output: z.unknown(),
    variables: z.record(z.string(), z.unknown()),
    steps: z.array(StepRecordSchema),
    path: z.array(z.string()),
    unresolved: z.array(z.string()),
    replies: z.array(z.string()),
    startedAt: z.string(),
    finishedAt: z.string(),
    durationMs: z.number(),
    offline: z.boolean(),
    error: StepErrorSchema.optional(),
    waitingFor: z.object({ stepId: z.string(), prompt: z.string(), variable: z.string() }).optional(),
    analysis: z.enum(["published", "pending", "waiting"]),
    stepsCursor: z.string().optional().describe(STEPS_CURSOR),
    stepCount: z.number().int().optional().describe("a long run: how many step records it has"),
    pathLength: z
      .number()
      .int()
      .optional()
      .describe("a long run: its path's length (`path` holds the first ids)"),
  })
  .meta({ id: "ExecutionResult" });

/** 202 of POST /executions: the run goes on in the runner; GET the `Location` for its progress. */
/** An event's name in POST /executions/{id}/events/{name} (as `wait_event.event`). */
export const EventName = z.string().regex(EVENT_NAME);

export const EventPayload = z
  .unknown()
  .describe(
    "the event's payload: any JSON (`null` or `{}` for none); it goes to the wait_event step's output",
  )
  .meta({ id: "EventPayload" });

export const CancelResponse = z
  .object({
    executionId: z.string(),
    status: z
      .string()
      .describe(
        "`cancelled`; another final status when the run ended first; `running` while it is being stopped",
      ),
  })
  .meta({ id: "CancelResult" });

export const RunAcceptedResponse = z
  .object({ executionId: z.string(), status: z.literal("running") })
  .meta({ id: "RunAccepted" });

export const ExecutionRecordResponse = ExecutionRecordSchema.extend({
  stepsCursor: z.string().optional().describe(STEPS_CURSOR),
  progress: z
    .object({
      stepCount: z.number().int().describe("steps entered so far (the checkpoint's count)"),
      next: z.string().optional().describe("the step the run goes on with"),
      leased: z.boolean().describe("a runner is advancing the run now"),
      waiting: z
        .object({
          kind: z.enum(["wait", "event"]),
          event: z.string().optional(),
          since: z.string(),
          wakeAt: z.number().describe("epoch ms: when the run goes on if nothing arrives"),
          timeoutAt: z.number().optional(),
        })
        .optional()
        .describe("the run is paused at a `wait` or `wait_event` step (`next`): what it waits for"),
    })
    .optional()
    .describe("a running run: where its checkpoint stands (the steps recorded so far are in `steps`)"),
}).meta({ id: "ExecutionRecord" });

export const StepsQuery = z.strictObject({
  cursor: z.string().min(1).max(2048).optional(),
  limit: z.coerce.number().int().min(1).max(100).optional(),
});

export const StepPageResponse = z
  .object({
    steps: z.array(StepRecordSchema),
    cursor: z
      .string()
      .optional()
      .describe("pass as `cursor` to get the next steps; absent after the last step"),
    total: z.number().int().describe("how many step records the run has"),
  })
  .meta({ id: "StepPage" });

export const ExecutionPageResponse = z
  .object({
    items: z.array(ExecutionRecordSchema),
    cursor: z.string().optional().describe("pass as `cursor` to get the next page; absent on the last page"),
  })
  .meta({ id: "ExecutionPage" });

export const ChildrenQuery = z.strictObject({
  cursor: z.string().min(1).max(2048).optional(),
  limit: z.coerce.number().int().min(1).max(100).optional(),
});

export const ChildPageResponse = z
  .object({
    items: z.array(
      ExecutionRecordSchema.pick({
        executionId: true,
        protocol: true,
        status: true,
        startedAt: true,
        finishedAt: true,
        durationMs: true,
        error: true,
        outcome: true,
        parentStep: true,
        parentVisit: true,
        itemIndex: true,
      }),
    ),
    cursor: z
      .string()
      .optional()
      .describe("pass as `cursor` to get the next children; absent on the last page"),
  })
  .meta({ id: "ChildPage" });

const isoTime = z.iso.datetime({ offset: true });

export const ExecutionsQuery = z
  .strictObject({
    from: isoTime.optional(),
    to: isoTime.optional(),
    status: z.enum(["completed", "failed", "timed_out", "waiting_input"]).optional(),
    limit: z.coerce.number().int().min(1).max(100).optional(),
    cursor: z.string().min(1).max(2048).optional(),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) <= Date.parse(q.to), {
    message: "`from` must not be after `to`",
    path: ["from"],
  });

export const HealthResponse = z.object({ status: z.literal("ok"), time: z.string() }).meta({ id: "Health" });

export const ReadyResponse = z
  .object({
    status: z.enum(["ready", "not_ready"]),
    dependencies: z.record(z.string(), z.enum(["ok", "missing", "unavailable"])),
  })
  .meta({ id: "Ready" });

/** zod issues as error details: where and what, never the rejected values. */
export function issuesOf(error: z.ZodError): Array<{ path: string; message: string }> {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
}
