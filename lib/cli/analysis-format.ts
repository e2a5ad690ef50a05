/** Figures of an analysis report the way people read them, for the terminal and the HTML report. */
import type { Pattern } from "../analysis/patterns.ts";
import type { ProtocolReport } from "../analysis/analyze.ts";

/** `1,234 ms`, `12.3 s`, `4.2 min`; "–" when there is no figure. */
export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  if (value < 1000) return `${Math.round(value).toLocaleString("en-US")} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`;
  return `${(value / 60_000).toFixed(1)} min`;
}

/** A fraction as `93.3%`; "–" when there is none. */
export function formatRate(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  return `${(Math.round(value * 1000) / 10).toString()}%`;
}

export function patternsOf<T extends Pattern["type"]>(
  report: ProtocolReport,
  type: T,
): Array<Extract<Pattern, { type: T }>> {
  return report.patterns.filter((p): p is Extract<Pattern, { type: T }> => p.type === type);
}

/** A short `key=value` list of a recommendation's evidence (numbers rounded, lists joined). */
export function evidenceLine(evidence: Record<string, unknown>): string {
  return Object.entries(evidence)
    .map(([key, value]) => `${key}=${evidenceValue(value)}`)
    .join(", ");
}

function evidenceValue(value: unknown): string {
  if (typeof value === "number")
    return Number.isInteger(value) ? String(value) : String(Math.round(value * 100) / 100);
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((item) => typeof item !== "object" || item === null))
    return `[${value.join(", ")}]`;
  return JSON.stringify(value);
}
