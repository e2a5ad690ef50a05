/**
 * Evidence-backed warnings for `mova validate --history`: what a history of runs says about a
 * document's protocols, as warnings with the document path they concern: a condition way never
 * taken in N runs, a step failing in more than the failure threshold of its runs, a placeholder
 * left unresolved in most runs.
 */
import type { MovaDocument } from "../mova/schema.ts";
import { readHistoryFile, reportFromSource } from "./history-source.ts";
import type { CliIo } from "./io.ts";

export interface EvidenceWarning {
  code: "evidence_branch_never_taken" | "evidence_failing_step" | "evidence_unresolved_placeholder";
  path: string;
  message: string;
}

/** Runs below this say nothing about unresolved placeholders. */
const MIN_RUNS = 10;

export async function evidenceWarnings(
  io: CliIo,
  file: string,
  document: MovaDocument,
  history: string,
): Promise<EvidenceWarning[]> {
  const out: EvidenceWarning[] = [];
  const indexOf = new Map(document.protocols.map((p, i) => [p.name, i]));
  const stepPath = (protocol: string, step: string | undefined): string => {
    const p = indexOf.get(protocol)!;
    const s = step === undefined ? -1 : document.protocols[p]!.steps.findIndex((x) => x.id === step);
    return s < 0 ? `$.protocols[${p}]` : `$.protocols[${p}].steps[${s}]`;
  };
  const report = await reportFromSource(io, { history, doc: file });
  for (const protocol of report.protocols) {
    if (!indexOf.has(protocol.protocol)) continue;
    for (const r of protocol.recommendations) {
      if (r.kind === "branch_never_taken" || r.kind === "failing_step") {
        out.push({
          code: r.kind === "branch_never_taken" ? "evidence_branch_never_taken" : "evidence_failing_step",
          path: stepPath(protocol.protocol, r.step),
          message: r.message,
        });
      }
    }
  }
  // Unresolved placeholders per protocol: runs, and runs that left each name unresolved.
  const runs = new Map<string, number>();
  const unresolved = new Map<string, Map<string, number>>();
  for await (const record of readHistoryFile(history)) {
    if (!indexOf.has(record.protocol) || record.status === "running") continue;
    runs.set(record.protocol, (runs.get(record.protocol) ?? 0) + 1);
    let names = unresolved.get(record.protocol);
    if (!names) {
      names = new Map();
      unresolved.set(record.protocol, names);
    }
    for (const name of new Set(record.unresolved)) names.set(name, (names.get(name) ?? 0) + 1);
  }
  for (const [protocol, names] of unresolved) {
    const total = runs.get(protocol) ?? 0;
    if (total < MIN_RUNS) continue;
    for (const [name, count] of names) {
      if (count * 2 <= total) continue;
      out.push({
        code: "evidence_unresolved_placeholder",
        path: `$.protocols[${indexOf.get(protocol)}]`,
        message: `placeholder {${name}} was unresolved in ${count} of ${total} runs of "${protocol}": give it a value (an input, an earlier step's output) or remove it`,
      });
    }
  }
  return out;
}
