/**
 * Event-driven runs: a run request `{ tenant, document, protocol, variables?, idempotencyKey? }`
 * arrives as an EventBridge event (detail-type `mova.run.requested`, the request in `detail`)
 * or as an SQS message from the trigger queue (the request as the body, or an EventBridge
 * envelope when a rule targets the queue). Each request starts a durable run (startRun, trigger
 * "event") exactly like an API run: history record `running` and checkpoint from its first
 * moment, a CAS write per step, steps inline within SYNC_BUDGET_MS, then handed to the runner
 * (the runs queue) when it outlives that budget; recorded, published and analysed once it ends.
 *
 * Idempotency: a request with `idempotencyKey` runs through lib/services/idempotency.ts (keys
 * scoped by tenant); a repeated key whose run finished is acknowledged without running.
 *
 * Failures are never silent and never lost:
 * - retryable (a backing store unavailable, the same key still running elsewhere): thrown,
 *   so SQS redelivers the message after its visibility timeout and EventBridge's async
 *   invocation retries;
 * - permanent (a malformed request, an unknown document or protocol, a key reused for a
 *   different request): also thrown, after an error log with the code. Dropping them would
 *   be a silent success; thrown, an SQS message fails alone in its batch and lands in the
 *   trigger dead-letter queue after the redrive count (an alarm watches it), and an
 *   EventBridge event ends in the function's on-failure destination. The redundant retries
 *   cost a parse and a document read each, never a run. `MovaError.retryable` says which.
 */
import { isMovaError, MovaError } from "../errors.ts";
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Context, EventBridgeEvent, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import * as z from "zod";
import { createDocumentLoader, type DocumentLoader } from "./document-loader.ts";
import type { RuntimeDeps } from "./runtime-deps.ts";
import { unknownProtocol } from "./executions.ts";
import { type RunOutcome, runDepsOf, startRun } from "./runs.ts";
import { IDEMPOTENCY_KEY } from "../ports.ts";
import { assertBoundedInput } from "../core/input-bounds.ts";

const RUN_REQUESTED_DETAIL_TYPE = "mova.run.requested";

const RunRequestSchema = z.object({
  tenant: z.string().min(1).max(128),
  document: z.string().min(1).max(256),
  protocol: z.string().min(1).max(256),
  variables: z.record(z.string(), z.unknown()).optional(),
  idempotencyKey: z.string().regex(IDEMPOTENCY_KEY, "must be 1-255 visible ASCII characters").optional(),
});

type RunRequest = z.infer<typeof RunRequestSchema>;

export type TriggerOutcome =
  | { state: "ran"; executionId: string; status: string; analysis: string }
  | { state: "replayed"; executionId?: string; status?: string };

interface TriggerDeps
  extends Pick<
    RuntimeDeps,
    | "documents"
    | "history"
    | "publisher"
    | "idempotency"
    | "llm"
    | "tools"
    | "secrets"
    | "clock"
    | "checkpoints"
    | "runQueue"
    | "runControl"
    | "callbacks"
    | "runStaleMs"
    | "runEvents"
    | "runTraces"
  > {
  logger: Logger;
  /** RUN_DEADLINE_MS: bounds a step in flight in this invocation. */
  runDeadlineMs: number;
  /** SYNC_BUDGET_MS: steps run inline until this much time passed, then the runner goes on. */
  syncBudgetMs: number;
}

interface TriggerService {
  /** Runs one request (already parsed or raw); throws MovaError when it did not run (`retryable` says whether a retry can help). */
  handleRequest(input: unknown): Promise<TriggerOutcome>;
}

export function createTriggerService(deps: TriggerDeps): TriggerService {
  const loader = createDocumentLoader(deps.documents);
  const runDeps = runDepsOf(deps, deps.logger, deps.runDeadlineMs);

  async function run(request: RunRequest): Promise<RunOutcome> {
    const document = await loadDocument(loader, request);
    return startRun(
      {
        tenant: request.tenant,
        document,
        protocol: request.protocol,
        variables: request.variables ?? {},
        trigger: "event",
      },
      runDeps,
      { syncBudgetMs: deps.syncBudgetMs },
    );
  }

  async function handleRequest(input: unknown): Promise<TriggerOutcome> {
    const request = parseRunRequest(input);
    const key = request.idempotencyKey;
    if (key === undefined) return ran(await run(request));

    // A repeated key answers what its first run stored; the key in progress or used with another
    // request is a MovaError (`retryable` when in progress); a run that throws gives the key back.
    let outcome: RunOutcome | undefined;
    const replay = await deps.idempotency.run(
      {
        scope: "trigger",
        tenant: request.tenant,
        key,
        request: {
          document: request.document,
          protocol: request.protocol,
          variables: request.variables ?? {},
        },
      },
      async () => {
        const done = await run(request);
        outcome = done;
        return { status: 200, body: { executionId: done.executionId, status: statusOf(done) } };
      },
      deps.logger,
    );
    if (!replay.replayed && outcome) return ran(outcome);
    const body = replay.response.body as { executionId?: string; status?: string } | undefined;
    deps.logger.info("run request replayed: its idempotency key already ran", {
      tenant: request.tenant,
      executionId: body?.executionId,
    });
    return { state: "replayed", executionId: body?.executionId, status: body?.status };
  }

  return { handleRequest };
}

/** `running` when the run was handed to the runner. */
function statusOf(outcome: RunOutcome): string {
  return outcome.kind === "running" ? "running" : outcome.result.status;
}

function ran(outcome: RunOutcome): TriggerOutcome {
  return {
    state: "ran",
    executionId: outcome.executionId,
    status: statusOf(outcome),
    analysis: outcome.record.analysis,
  };
}

/** Validates a run request; a malformed one is a permanent MovaError `invalid_run_request`. */
function parseRunRequest(input: unknown): RunRequest {
  const parsed = RunRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((issue) => `${issue.path.join(".") || "(request)"}: ${issue.message}`)
      .join("; ");
    throw new MovaError("invalid_run_request", `invalid run request: ${issues}`);
  }
  // Refused (permanent) before a claim or a record is written, as the API refuses them.
  assertBoundedInput(parsed.data.variables, "`variables`");
  return parsed.data;
}

/**
 * The run request an SQS message carries: its JSON body, or the `detail` of the EventBridge
 * envelope when an EventBridge rule targets the queue.
 */
function runRequestOfSqsBody(body: string, sourceTenants: SourceTenants): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new MovaError("invalid_run_request", "the message body is not JSON");
  }
  if (isEventBridgeEnvelope(parsed)) return detailOf(parsed, sourceTenants);
  return parsed;
}

function isEventBridgeEnvelope(value: unknown): value is { "detail-type": unknown; detail: unknown } {
  return value !== null && typeof value === "object" && "detail-type" in value && "detail" in value;
}

/**
 * Each trusted EventBridge `source` and the tenant its events run as (TRIGGER_SOURCES,
 * `source=tenant,…`). Empty: no mapping (the local stack), the tenant is the event's own.
 */
export type SourceTenants = ReadonlyMap<string, string>;

/** Parses TRIGGER_SOURCES; a malformed entry is a configuration error. */
export function parseSourceTenants(entries: readonly string[]): SourceTenants {
  const map = new Map<string, string>();
  for (const entry of entries) {
    const [source, tenant, ...rest] = entry.split("=").map((part) => part.trim());
    if (!source || !tenant || rest.length > 0)
      throw new MovaError("invalid_config", "TRIGGER_SOURCES entries must be source=tenant");
    map.set(source, tenant);
  }
  return map;
}

function detailOf(
  event: { "detail-type": unknown; detail: unknown; source?: unknown },
  sourceTenants: SourceTenants,
): unknown {
  if (event["detail-type"] !== RUN_REQUESTED_DETAIL_TYPE) {
    throw new MovaError(
      "unknown_detail_type",
      `detail-type "${String(event["detail-type"])}" is not ${RUN_REQUESTED_DETAIL_TYPE}`,
    );
  }
  if (sourceTenants.size === 0) return event.detail;
  // The tenant comes from the configuration, never from the event: anyone allowed to put
  // events on the bus could otherwise start runs as any tenant.
  const tenant = typeof event.source === "string" ? sourceTenants.get(event.source) : undefined;
  if (tenant === undefined)
    throw new MovaError(
      "untrusted_source",
      `events from source "${String(event.source).slice(0, 128)}" are not accepted`,
    );
  const detail = event.detail;
  if (detail === null || typeof detail !== "object" || Array.isArray(detail))
    throw new MovaError("invalid_run_request", "the event's detail is not an object");
  const claimed = (detail as { tenant?: unknown }).tenant;
  if (claimed !== undefined && claimed !== tenant)
    throw new MovaError("tenant_mismatch", `source "${String(event.source)}" runs as its own tenant only`);
  return { ...detail, tenant };
}

async function loadDocument(loader: DocumentLoader, request: RunRequest) {
  try {
    const document = await loader.load(request.tenant, request.document);
    if (!document.parsed.protocols.some((p) => p.name === request.protocol)) {
      throw unknownProtocol(request.protocol);
    }
    return document;
  } catch (error) {
    if (isMovaError(error, "not_found")) {
      throw new MovaError(
        "document_not_found",
        `tenant "${request.tenant}" has no document "${request.document}"`,
      );
    }
    throw error;
  }
}

export type TriggerEvent = SQSEvent | EventBridgeEvent<string, unknown>;

export type TriggerHandler = (
  event: TriggerEvent,
  context?: Context,
) => Promise<SQSBatchResponse | TriggerOutcome>;

/**
 * The Lambda handler: an SQS batch answers with its failed message ids (partial batch
 * response); an EventBridge event answers with the outcome, or throws so that Lambda's
 * asynchronous retries and on-failure destination apply.
 */
export function createTriggerHandler(
  service: TriggerService,
  logger: Logger,
  sourceTenants: SourceTenants = new Map(),
): TriggerHandler {
  const processor = new BatchProcessor(EventType.SQS);

  const logFailure = (error: unknown, where: Record<string, unknown>) => {
    if (error instanceof MovaError) {
      logger.error(error.retryable ? "run request failed; it will be retried" : "run request rejected", {
        ...where,
        code: error.code,
        retryable: error.retryable,
        reason: error.message,
      });
    } else {
      logger.error("run request failed", { ...where, error: String(error) });
    }
  };

  const recordHandler = async (record: SQSRecord) => {
    try {
      return await service.handleRequest(runRequestOfSqsBody(record.body, sourceTenants));
    } catch (error) {
      logFailure(error, { messageId: record.messageId });
      throw error;
    }
  };

  return async (event, context) => {
    if (isSqsEvent(event)) {
      return processPartialResponse(event, recordHandler, processor, {
        // A batch where every message failed is answered like any other (all ids listed),
        // so each message follows its own redrive count rather than the whole batch's.
        throwOnFullBatchFailure: false,
        ...(context ? { context } : {}),
      });
    }
    if (isEventBridgeEvent(event)) {
      try {
        return await service.handleRequest(detailOf(event, sourceTenants));
      } catch (error) {
        logFailure(error, { eventId: (event as { id?: string }).id });
        throw error;
      }
    }
    const error = new MovaError(
      "unsupported_event",
      "the trigger accepts SQS batches and EventBridge events only",
    );
    logFailure(error, {});
    throw error;
  };
}

function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as { Records?: unknown })?.Records;
  return (
    Array.isArray(records) &&
    records.every((r) => (r as { eventSource?: unknown })?.eventSource === "aws:sqs")
  );
}

function isEventBridgeEvent(event: unknown): event is EventBridgeEvent<string, unknown> {
  return isEventBridgeEnvelope(event);
}
