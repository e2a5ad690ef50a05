/**
 * Child runs as executions of their own. A `call` or `foreach` step's children run inside
 * their parent's step (lib/engine/steps/sub-protocol.ts); the engine hands each one out as
 * it ends (`onChildRun`), and a leg of the parent records them before the checkpoint of the
 * step that ran them (and any left, of a step whose checkpoint failed, before the parent):
 * each child becomes a history item of its own (its protocol, its parent's document and
 * version, its step records, `parentExecutionId` and `parentStep`), linked to its parent
 * (GET /executions/{id}/children), and is published to the analysis like any finished run,
 * so the child protocol gets figures of its own.
 *
 * Idempotent: a child's id is derived from its parent's, the step, the visit and the item,
 * so a step run again after a crash, a retried leg or a duplicate delivery makes the same
 * ids. The history keeps the first finished record of an id (a second one is refused and
 * skipped here) and the analysis counts an execution id once.
 *
 * Bounded: a leg keeps at most CHILD_RECORDS_MAX_BYTES of a step's children's step records
 * and outputs until it records them; a child past that is recorded with its status, path and
 * error but without its step records (`stepsDropped`) or output (`outputTruncated`).
 */
import type { ChildRunEnded, RunResult } from "../core/run.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import { fitStep, utf8Bytes } from "../core/record-size.ts";
import type { MovaDocument } from "../mova/schema.ts";
import { isMovaError } from "../errors.ts";
import { type ExecutionDeps, recordExecution, withOutcome } from "./executions.ts";

/**
 * The children's step records and outputs (JSON bytes) a leg keeps until it records them:
 * a `foreach` of 1,000 children of a few steps each fits whole.
 */
export const CHILD_RECORDS_MAX_BYTES = 16 * 1024 * 1024;
/** Children recorded at once (each a history write and a publish). */
const CHILD_WRITE_CONCURRENCY = 16;

/** What a child takes from its parent's record. */
export type ParentHeader = Pick<
  ExecutionRecord,
  "tenant" | "document" | "documentVersion" | "trigger" | "sessionId"
>;

export interface ChildRunCollector {
  /** The engine's `onChildRun`: keeps the child's record until `take`. */
  onChildRun(child: ChildRunEnded): void;
  /** The children collected since the last call, in the order they ended. */
  take(): ExecutionRecord[];
}

export function createChildRunCollector(
  parent: ParentHeader,
  document: MovaDocument,
  maxBytes = CHILD_RECORDS_MAX_BYTES,
): ChildRunCollector {
  let records: ExecutionRecord[] = [];
  let bytes = 0;
  return {
    onChildRun(child) {
      const record = childRecord(parent, document, child);
      const size =
        record.steps.reduce((sum, step) => sum + utf8Bytes(JSON.stringify(step)), 0) +
        utf8Bytes(JSON.stringify(record.output) ?? "");
      if (bytes + size <= maxBytes) {
        bytes += size;
        records.push(record);
        return;
      }
      // Past the bound the child is still recorded, with what it costs little to keep.
      const { output: _output, ...rest } = record;
      const kept: ExecutionRecord = { ...rest, steps: [] };
      if (record.steps.length > 0) kept.stepsDropped = record.steps.length;
      if (record.output !== undefined) kept.outputTruncated = true;
      records.push(kept);
    },
    take() {
      const taken = records;
      records = [];
      bytes = 0;
      return taken;
    },
  };
}

/**
 * Records the children (history and analysis, as recordExecution does for any finished run),
 * a few at once. A child recorded before is skipped; a child that cannot be recorded (history
 * out of reach after recordExecution's tries) is logged and left out: the parent's step record
 * still lists it, and the parent's run goes on.
 */
export async function recordChildren(
  records: readonly ExecutionRecord[],
  deps: ExecutionDeps,
): Promise<{ recorded: number; before: number; failed: number }> {
  const counts = { recorded: 0, before: 0, failed: 0 };
  let next = 0;
  const worker = async () => {
    while (next < records.length) {
      const record = records[next++]!;
      try {
        await recordExecution(record, deps);
        counts.recorded++;
      } catch (error) {
        if (isMovaError(error, "execution_already_finished")) {
          counts.before++;
          continue;
        }
        counts.failed++;
        deps.logger?.warn("a child run could not be recorded", {
          executionId: record.executionId,
          parentExecutionId: record.parentExecutionId,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHILD_WRITE_CONCURRENCY, records.length) }, worker));
  return counts;
}

/** The child's execution record: finished (a child that waited failed its step: so is it recorded). */
function childRecord(parent: ParentHeader, document: MovaDocument, child: ChildRunEnded): ExecutionRecord {
  const { result } = child;
  const waited = result.status === "waiting_input" || result.status === "running";
  const record: ExecutionRecord = {
    tenant: parent.tenant,
    executionId: child.executionId,
    document: parent.document,
    documentVersion: parent.documentVersion,
    protocol: result.protocol,
    trigger: parent.trigger,
    ...(parent.sessionId !== undefined ? { sessionId: parent.sessionId } : {}),
    parentExecutionId: child.parentExecutionId,
    parentStep: child.parentStep,
    parentVisit: child.parentVisit,
    ...(child.index !== undefined ? { itemIndex: child.index } : {}),
    status: waited ? "failed" : result.status,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    durationMs: result.durationMs,
    path: result.path,
    // Fitted now so that what the leg keeps is what a history page would hold.
    steps: result.steps.map((step) => fitStep(step)),
    unresolved: result.unresolved,
    offline: result.offline,
    analysis: "published",
  };
  if (waited) record.error = notFinished(result);
  else if (result.error !== undefined) record.error = result.error;
  if (result.output !== undefined && !waited) record.output = result.output;
  return withOutcome(record, document, result);
}

function notFinished(result: RunResult) {
  return {
    code: "child_not_finished",
    message: `the protocol "${result.protocol}" waited (${result.status}); a child must finish inside its step`,
  };
}
