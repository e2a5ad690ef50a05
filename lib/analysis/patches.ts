/**
 * Recommendations as changes: each gets a stable id, a one-line statement of its evidence, and
 * an RFC 6902 JSON Patch against the document as it was sent (the version the figures were
 * computed from). The patch starts with `test`s of what it changes (the steps as written,
 * the protocol's `start` or fallback when it changes them), so applying it to a document that
 * changed there since fails instead of guessing. Patches are applied with fast-json-patch.
 *
 * One mechanical change per kind, each in its own module of patches/:
 * - `failing_step`: a retry for errors a retry can fix, else an error path, a new `end` step
 *   the failing step's `on_error` goes to (failure.ts, retry.ts, error-path.ts);
 * - `low_success_rate`: the same change for its top failure point, so it is the very patch
 *   `failing_step` gives for that step, never a conflicting one;
 * - `slow_step`: a tail cut (timeout of about twice the median and a retry), or a lower
 *   `max_tokens` for a prompt step slow throughout (slow-step.ts);
 * - `branch_never_taken`: the condition step removed, its references sent to where every run
 *   went (dead-branch.ts, references.ts);
 * - `parallelize`: the steps made the branches of one new `parallel` step (parallelize.ts).
 * The patch is null when it cannot be made: the source does not validate, the protocol or
 * step is not in it, or the case is one the module says it leaves to a person.
 */
import { createHash } from "node:crypto";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import type { Recommendation } from "./recommendations.ts";
import { deadBranchPatch } from "./patches/dead-branch.ts";
import { type FailureFigures, failurePatch } from "./patches/failure.ts";
import { parallelizePatch } from "./patches/parallelize.ts";
import { type SlowFigures, slowStepPatch } from "./patches/slow-step.ts";
import { isObject, locateProtocol, type PatchSource, readSource } from "./patches/source.ts";

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

/** The patch of one recommendation, or null when none can be made against this source. */
function patchOf(recommendation: Recommendation, source: PatchSource): Operation[] | null {
  const protocol = locateProtocol(source, recommendation.protocol);
  if (!protocol) return null;
  const { evidence, step } = recommendation;
  switch (recommendation.kind) {
    case "failing_step":
      return step === undefined ? null : failurePatch(protocol, step, evidence as unknown as FailureFigures);
    case "low_success_rate": {
      const top = evidence.topFailurePoint;
      return isObject(top) && typeof top.step === "string"
        ? failurePatch(protocol, top.step, top as unknown as FailureFigures)
        : null;
    }
    case "slow_step":
      return step === undefined ? null : slowStepPatch(protocol, step, evidence as unknown as SlowFigures);
    case "branch_never_taken":
      // A guard of input is kept: the case it handles may still come.
      return step === undefined || evidence.guard
        ? null
        : deadBranchPatch(protocol, step, evidence.neverTaken);
    case "parallelize": {
      const steps = Array.isArray(evidence.steps) ? evidence.steps : [];
      const ids = steps.map((s) => (isObject(s) ? s.step : undefined));
      return ids.every((id) => typeof id === "string") ? parallelizePatch(protocol, ids as string[]) : null;
    }
  }
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
  const patchSource = readSource(source);
  return recommendations.map((recommendation) => ({
    ...recommendation,
    id: idOf(recommendation, version),
    statement: statementOf(recommendation),
    patch: patchSource ? patchOf(recommendation, patchSource) : null,
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
