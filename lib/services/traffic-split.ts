/**
 * Traffic split between a document's versions: new sessions and executions choose a version
 * by a stable hash of who they are for (the same user lands on the same version while the
 * split stands), and a candidate found significantly worse than the base on success rate or
 * evaluator score, with enough runs, sends the traffic back to the base by itself. The base is
 * the version with the largest share (the lowest on a tie); every other version with a share
 * is a candidate.
 */
import { createHash } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { DocumentLoader } from "./document-loader.ts";
import type { LoadedDocument } from "./executions.ts";
import type { DocumentRouting, RoutingStore } from "../ports.ts";
import { type ComparisonDeps, compareStoredVersions, windowDays } from "./version-comparison.ts";

/** The measures whose `worse` verdict rolls a candidate back. */
const ROLLBACK_MEASURES = ["success_rate", "evaluator_score"] as const;
export const ROLLBACK_WINDOW_DAYS = 30;

export function baseOf(weights: Record<string, number>): number {
  let base: number | undefined;
  for (const [version, share] of Object.entries(weights)) {
    const v = Number(version);
    if (base === undefined || share > weights[String(base)]! || (share === weights[String(base)] && v < base))
      base = v;
  }
  if (base === undefined) throw new RangeError("a routing without versions");
  return base;
}

/** The version for `stickyKey`: its hash's bucket (0–99) in the shares, in version order. */
export function chooseVersion(weights: Record<string, number>, stickyKey: string): number {
  const bucket = createHash("sha256").update(stickyKey).digest().readUInt32BE(0) % 100;
  const versions = Object.keys(weights)
    .map(Number)
    .sort((a, b) => a - b);
  let upTo = 0;
  for (const version of versions) {
    upTo += weights[String(version)]!;
    if (bucket < upTo) return version;
  }
  return baseOf(weights);
}

/** The document a new session or execution runs: its routed version when a split is set, else the latest. */
export async function loadRouted(
  loader: DocumentLoader,
  routing: RoutingStore | undefined,
  tenant: string,
  name: string,
  stickyKey: string,
): Promise<LoadedDocument> {
  const split = await routing?.get(tenant, name);
  if (!split || Object.keys(split.weights).length === 0) return loader.load(tenant, name);
  return loader.loadVersion(
    tenant,
    name,
    chooseVersion(split.weights, `${tenant}\u0000${name}\u0000${stickyKey}`),
  );
}

export interface RollbackDeps extends ComparisonDeps {
  routing: RoutingStore;
  now: () => number;
  logger?: Logger | undefined;
}

/**
 * Judges each candidate of the document's split against the base on `protocol` (the last
 * ROLLBACK_WINDOW_DAYS days); a candidate worse on a rollback measure sends every share back to
 * the base, with the reason. Returns the new routing when it rolled back.
 */
export async function checkRollback(
  deps: RollbackDeps,
  tenant: string,
  document: string,
  protocol: string,
): Promise<DocumentRouting | undefined> {
  const split = await deps.routing.get(tenant, document);
  if (!split) return undefined;
  const base = baseOf(split.weights);
  const candidates = Object.entries(split.weights)
    .filter(([version, share]) => Number(version) !== base && share > 0)
    .map(([version]) => Number(version));
  if (candidates.length === 0) return undefined;
  const window = windowDays(ROLLBACK_WINDOW_DAYS, deps.now());
  for (const candidate of candidates) {
    const { measures } = await compareStoredVersions(
      deps,
      { tenant, document, protocol },
      base,
      candidate,
      window,
    );
    const worse = measures.find(
      (m) => (ROLLBACK_MEASURES as readonly string[]).includes(m.measure) && m.verdict === "worse",
    );
    if (!worse) continue;
    const at = new Date(deps.now()).toISOString();
    const next: Omit<DocumentRouting, "revision"> = {
      weights: { [String(base)]: 100 },
      updatedAt: at,
      rolledBack: {
        at,
        candidate,
        base,
        previousWeights: split.weights,
        protocol,
        measure: worse.measure,
        pValue: worse.pValue,
        reason: `version ${candidate} is worse than version ${base} on ${worse.measure} of "${protocol}" (${worse.candidate} against ${worse.base}, ${worse.test}, p = ${worse.pValue}, ${worse.n.candidate} and ${worse.n.base} runs)`,
      },
    };
    // Only over the split judged: a split changed meanwhile is judged again by the next merge.
    if (await deps.routing.put(tenant, document, next, split.revision)) {
      deps.logger?.warn("traffic split rolled back", { tenant, document, reason: next.rolledBack!.reason });
      return { ...next, revision: split.revision + 1 };
    }
    return undefined;
  }
  return undefined;
}
