/**
 * Shared by the patch tests: documents validated as the API validates them, histories of
 * execution records (written here, or made by running a document with the engine), and the
 * recommendations with their patches computed from them.
 */
import { expect } from "vitest";
import { addExecution, createAggregate } from "../../lib/analysis/aggregate.ts";
import { type ActionableRecommendation, actionable, applyPatch } from "../../lib/analysis/patches.ts";
import { type RecommendationOptions, recommend } from "../../lib/analysis/recommendations.ts";
import { type ExecutionRecord, ExecutionRecordSchema } from "../../lib/core/execution-record.ts";
import type { RunResult } from "../../lib/core/run.ts";
import type { MovaDocument } from "../../lib/mova/schema.ts";
import { validateDocument } from "../../lib/mova/validate.ts";

/** The validated model of a source, which must have no errors. */
export function modelOf(source: unknown): MovaDocument {
  const validation = validateDocument(source);
  expect(validation.errors).toEqual([]);
  return validation.document!;
}

export interface StepLine {
  id: string;
  action: string;
  status?: "succeeded" | "failed";
  durationMs?: number;
  error?: string;
  httpStatus?: number;
  branch?: "then" | "else";
  completionTokens?: number;
}

/** One execution record of protocol `protocol`, its steps as given (its status from them, unless given). */
export function recordOf(
  i: number,
  protocol: string,
  steps: StepLine[],
  status?: ExecutionRecord["status"],
): ExecutionRecord {
  const failed = steps.find((s) => s.status === "failed");
  return ExecutionRecordSchema.parse({
    tenant: "dev",
    executionId: `e${i}`,
    document: "doc",
    documentVersion: 1,
    protocol,
    trigger: "cli",
    status: status ?? (failed ? "failed" : "completed"),
    startedAt: "2026-03-01T10:00:00.000Z",
    finishedAt: "2026-03-01T10:00:10.000Z",
    durationMs: steps.reduce((sum, s) => sum + (s.durationMs ?? 10), 0),
    path: steps.map((s) => s.id),
    steps: steps.map((s) => ({
      id: s.id,
      action: s.action,
      status: s.status ?? "succeeded",
      attempts: 1,
      startedAt: "2026-03-01T10:00:00.000Z",
      durationMs: s.durationMs ?? 10,
      ...(s.error !== undefined && { error: { code: s.error, message: `${s.error} happened` } }),
      ...(s.httpStatus !== undefined && { httpStatus: s.httpStatus }),
      ...(s.branch !== undefined && { branch: s.branch }),
      ...(s.completionTokens !== undefined && {
        model: "m",
        usage: {
          promptTokens: 10,
          completionTokens: s.completionTokens,
          totalTokens: 10 + s.completionTokens,
        },
      }),
    })),
    ...(failed && { error: { code: failed.error ?? "unknown", message: "failed" } }),
  });
}

/** The record of a run the engine made. */
export function recordOfRun(i: number, result: RunResult): ExecutionRecord {
  return ExecutionRecordSchema.parse({
    tenant: "dev",
    executionId: `e${i}`,
    document: "doc",
    documentVersion: 1,
    protocol: result.protocol,
    trigger: "cli",
    status: result.status,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    durationMs: result.durationMs,
    path: result.path,
    steps: result.steps,
    ...(result.error && { error: result.error }),
  });
}

/** The recommendations of one protocol from these records, with their patches against `source`. */
export function recommendationsOf(
  source: unknown,
  protocol: string,
  records: readonly ExecutionRecord[],
  options: RecommendationOptions = {},
): ActionableRecommendation[] {
  const aggregate = createAggregate({ tenant: "dev", document: "doc", protocol, version: 1 });
  for (const record of records) addExecution(aggregate, record);
  return actionable(recommend(aggregate, modelOf(source), options), source, 1);
}

/** A document in the sections form, as the tests read it. */
export interface WrittenDocument {
  protocols: Array<{ name: string; start?: string; steps: Array<Record<string, unknown>> }>;
  [key: string]: unknown;
}

/** The steps of a protocol (the first by default) as written. */
export function stepsOf(document: WrittenDocument, protocol = 0): Array<Record<string, unknown>> {
  const found = document.protocols[protocol];
  if (!found) throw new Error(`no protocol ${protocol}`);
  return found.steps;
}

/** One step as written. */
export function stepOf(document: WrittenDocument, index: number, protocol = 0): Record<string, unknown> {
  const found = stepsOf(document, protocol)[index];
  if (!found) throw new Error(`no step ${index}`);
  return found;
}

/** Applies a recommendation's patch; the result must validate with no errors. */
export function applied(
  source: unknown,
  recommendation: ActionableRecommendation | undefined,
): WrittenDocument {
  expect(recommendation?.patch, "a patch").toBeTruthy();
  const patch = recommendation!.patch!;
  expect(patch[0]?.op).toBe("test");
  const result = applyPatch(source, patch);
  if (!result.ok) throw new Error(result.error);
  expect(validateDocument(result.document).errors).toEqual([]);
  return result.document as WrittenDocument;
}

/** The validator's warnings of the patched document that the source did not have. */
export function addedWarnings(source: unknown, patched: unknown): string[] {
  const text = (w: { code: string; message: string }) => `${w.code}: ${w.message}`;
  const before = new Set(validateDocument(source).warnings.map(text));
  return validateDocument(patched)
    .warnings.map(text)
    .filter((w) => !before.has(w));
}

/** The patch no longer applies to the source changed by `change`. */
export function expectConflict(
  source: unknown,
  recommendation: ActionableRecommendation,
  change: (copy: WrittenDocument) => void,
): void {
  const copy = structuredClone(source) as WrittenDocument;
  change(copy);
  const result = applyPatch(copy, recommendation.patch!);
  expect(result.ok).toBe(false);
  // And the unchanged source still takes it.
  expect(applyPatch(source, recommendation.patch!).ok).toBe(true);
}
