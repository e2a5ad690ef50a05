/**
 * Recommendations as changes: each gets a stable id, a one-line statement of its evidence, and,
 * when the change is mechanical, an RFC 6902 JSON Patch against the document as it was sent
 * (the version the figures were computed from). The patch starts with a `test` of the part it
 * changes, so applying it to a document that changed there since fails instead of guessing.
 * Patches are applied with fast-json-patch.
 *
 * Mechanical changes: a step failing mostly with errors a retry can fix gets a retry
 * (attempts 3, back-off 200 ms; or twice the attempts it already has, at most 20). The other
 * recommendations need a person's judgement and carry no patch.
 */
import { createHash } from "node:crypto";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import type { Recommendation } from "./recommendations.ts";

export type { Operation as PatchOperation } from "fast-json-patch";

export interface ActionableRecommendation extends Recommendation {
  /** Stable for the same finding on the same version. */
  id: string;
  /** One line: what the figures say. */
  statement: string;
  /** The change, against the version the recommendation was computed from; null when none is mechanical. */
  patch: Operation[] | null;
  /** The version the patch is against. */
  version: number | null;
}

const MAX_RETRY_ATTEMPTS = 20;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The JSON Pointer of a protocol's step in the document as sent, with the step itself. */
function locateStep(
  source: unknown,
  protocol: string,
  step: string,
): { path: string; value: Record<string, unknown> } | undefined {
  if (!isObject(source) || !Array.isArray(source.protocols)) return undefined;
  const p = source.protocols.findIndex((x) => isObject(x) && x.name === protocol);
  const steps = p < 0 ? undefined : (source.protocols[p] as Record<string, unknown>).steps;
  if (!Array.isArray(steps)) return undefined;
  const s = steps.findIndex((x) => isObject(x) && x.id === step);
  if (s < 0) return undefined;
  return { path: `/protocols/${p}/steps/${s}`, value: steps[s] as Record<string, unknown> };
}

function retryPatch(recommendation: Recommendation, source: unknown): Operation[] | null {
  if (recommendation.kind !== "failing_step" || recommendation.evidence.suggestion !== "retry") return null;
  if (recommendation.step === undefined) return null;
  const located = locateStep(source, recommendation.protocol, recommendation.step);
  if (!located) return null;
  const { path, value } = located;
  if (value.action !== "prompt" && value.action !== "tool_api") return null;
  const current = isObject(value.retry) ? value.retry : undefined;
  const attempts = typeof current?.attempts === "number" ? current.attempts : 1;
  if (attempts >= MAX_RETRY_ATTEMPTS) return null;
  const next = current
    ? { ...current, attempts: Math.min(MAX_RETRY_ATTEMPTS, Math.max(3, attempts * 2)) }
    : { attempts: 3, backoff_ms: 200 };
  return [
    { op: "test", path, value },
    { op: "add", path: `${path}/retry`, value: next },
  ];
}

/** What the figures say, in one line. */
export function statementOf(recommendation: Recommendation): string {
  // The messages start with the finding; the advice follows a colon or a semicolon.
  const finding = recommendation.message.split(/[:;](?=\s)/)[0]!.trim();
  return finding.endsWith(".") ? finding : `${finding}.`;
}

function idOf(recommendation: Recommendation, version: number | null): string {
  const basis = [version ?? "", recommendation.kind, recommendation.protocol, recommendation.step ?? ""].join(
    "\u0000",
  );
  return `rec_${createHash("sha256").update(basis).digest("hex").slice(0, 16)}`;
}

/** The recommendations with their ids, statements and patches against `source` (the document as sent, version `version`). */
export function actionable(
  recommendations: readonly Recommendation[],
  source: unknown,
  version: number | null,
): ActionableRecommendation[] {
  return recommendations.map((recommendation) => ({
    ...recommendation,
    id: idOf(recommendation, version),
    statement: statementOf(recommendation),
    patch: source === undefined ? null : retryPatch(recommendation, source),
    version,
  }));
}

export type PatchResult = { ok: true; document: unknown } | { ok: false; error: string };

/** Applies a patch to a copy of `source` (which is left as it was); a patch that does not apply says why. */
export function applyPatch(source: unknown, patch: readonly Operation[]): PatchResult {
  const error = fastJsonPatch.validate(patch as Operation[], source);
  if (error) return { ok: false, error: `${error.name}: ${error.message.split("\n")[0]}` };
  try {
    const copy = fastJsonPatch.deepClone(source);
    const result = fastJsonPatch.applyPatch(copy, patch as Operation[], true, true);
    return { ok: true, document: result.newDocument };
  } catch (cause) {
    return { ok: false, error: (cause as Error).message.split("\n")[0] ?? "the patch does not apply" };
  }
}

/** A readable diff of a patch: one line per operation. */
export function describePatch(patch: readonly Operation[]): string[] {
  return patch
    .filter((op) => op.op !== "test")
    .map((op) => {
      const value = "value" in op ? ` ${JSON.stringify(op.value)}` : "";
      const from = "from" in op ? ` from ${op.from}` : "";
      return `${op.op} ${op.path}${from}${value}`;
    });
}
