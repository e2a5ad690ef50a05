/**
 * `mova analyze`: the analysis report of a document's protocols, from a JSON Lines file of
 * execution records (`--history`) or from the running local stack's history (`--document`).
 * `--json` prints the AnalysisReport as the library computes it.
 */
import type { AnalysisReport, ProtocolReport } from "../../analysis/analyze.ts";
import { evidenceLine, formatMs, formatRate, patternsOf } from "../analysis-format.ts";
import { type HistorySourceOptions, reportFromSource } from "../history-source.ts";
import { type CliIo, EXIT, type Style, styleFor, writeLine } from "../io.ts";

interface AnalyzeOptions extends HistorySourceOptions {
  json?: boolean;
}

export async function analyzeCommand(io: CliIo, options: AnalyzeOptions): Promise<number> {
  const report = await reportFromSource(io, options);
  if (options.json) {
    writeLine(io.stdout, JSON.stringify(report, null, 2));
    return EXIT.ok;
  }
  writeLine(io.stdout, formatReport(report, styleFor(io)));
  return EXIT.ok;
}

function formatReport(report: AnalysisReport, style: Style): string {
  const lines: string[] = [];
  const { window, records } = report;
  lines.push(
    style.bold(
      `Analysis of ${window.from.slice(0, 16).replace("T", " ")} – ${window.to.slice(0, 16).replace("T", " ")} UTC`,
    ),
  );
  if (records) {
    const skipped = records.read - records.analysed;
    lines.push(
      style.dim(
        `${records.analysed} execution${records.analysed === 1 ? "" : "s"} analysed${skipped > 0 ? ` (${skipped} of ${records.read} read were outside the window or filter)` : ""}`,
      ),
    );
  }
  if (report.protocols.length === 0) {
    lines.push("", "No executions matched: check --document/--protocol, or widen --window.");
    return lines.join("\n");
  }
  for (const protocol of report.protocols) lines.push("", ...formatProtocol(protocol, style));
  return lines.join("\n");
}

function formatProtocol(report: ProtocolReport, style: Style): string[] {
  const s = report.statistics;
  const lines: string[] = [];
  const rateText = formatRate(s.successRate);
  const coloured =
    s.successRate === null
      ? rateText
      : s.successRate >= 0.9
        ? style.green(rateText)
        : s.successRate >= 0.8
          ? style.yellow(rateText)
          : style.red(rateText);
  lines.push(
    style.bold(`■ ${report.document} / ${report.protocol}`) + style.dim(`  (tenant ${report.tenant})`),
  );
  lines.push(
    `  Runs ${s.total}: ${s.successful} completed, ${s.failed} failed${s.timedOut ? ` (${s.timedOut} timed out)` : ""}${s.waitingInput ? `, ${s.waitingInput} waiting for input` : ""}; success rate ${coloured}`,
  );
  lines.push(
    `  Duration p50 ${formatMs(s.duration.p50)} · p95 ${formatMs(s.duration.p95)} · p99 ${formatMs(s.duration.p99)}`,
  );

  lines.push("", "  Steps");
  const rows = [
    ["step", "action", "runs", "ok", "failed", "skipped", "success", "p50", "p95", "p99", "retries"],
    ...s.steps.map((step) => [
      step.step,
      step.action,
      String(step.total),
      String(step.succeeded),
      String(step.failed),
      String(step.skipped),
      formatRate(step.successRate),
      formatMs(step.latency.p50),
      formatMs(step.latency.p95),
      formatMs(step.latency.p99),
      String(step.retries),
    ]),
  ];
  lines.push(...table(rows, style).map((row) => `    ${row}`));

  const strategies = patternsOf(report, "strategy");
  if (strategies.length > 0) {
    lines.push("", "  Top paths of completed runs");
    for (const p of strategies.slice(0, 5)) {
      lines.push(
        `    ${String(p.figures.runs).padStart(4)}×  ${p.path.join(" → ")}`,
        style.dim(
          `          ${formatRate(p.figures.shareOfSuccesses)} of successes, ${formatRate(p.figures.successRateWhenTaken)} succeed when taken, median ${formatMs(p.figures.medianDurationMs)}`,
        ),
      );
    }
  }

  const failures = patternsOf(report, "failure_point");
  if (failures.length > 0) {
    lines.push("", "  Failure points");
    for (const p of failures) {
      const codes = p.figures.topErrorCodes.map((c) => `${c.code} ×${c.count}`).join(", ");
      lines.push(
        `    ${p.step}: ${p.figures.failedRuns} failed run${p.figures.failedRuns === 1 ? "" : "s"} (${formatRate(p.figures.shareOfFailedRuns)} of failures), step failure rate ${formatRate(p.figures.failureRate)}${codes ? `; ${codes}` : ""}`,
      );
    }
  }

  const tools = patternsOf(report, "tool_selection");
  if (tools.length > 0) {
    lines.push("", "  Tools");
    for (const p of tools) {
      lines.push(
        `    ${p.tool}: ${p.figures.calls} calls, ${formatRate(p.figures.successRate)} succeed, p50 ${formatMs(p.figures.latency.p50)}, p95 ${formatMs(p.figures.latency.p95)}, ${p.figures.retries} retries`,
      );
    }
  }

  const terms = patternsOf(report, "prompt");
  if (terms.length > 0) {
    lines.push(
      "",
      "  Prompt terms (lift: how much more often the term is in succeeding than in failing prompts)",
    );
    for (const direction of ["failure", "success"] as const) {
      const chosen = terms.filter((t) => t.direction === direction).slice(0, 6);
      if (chosen.length === 0) continue;
      const label = direction === "failure" ? style.red("with failures:") : style.green("with successes:");
      lines.push(
        `    ${label} ${chosen
          .map(
            (t) =>
              `"${t.term}" (lift ${t.figures.lift.toFixed(2)}, ${t.figures.succeeded} ok / ${t.figures.failed} failed)`,
          )
          .join(", ")}`,
      );
    }
  }

  const intents = patternsOf(report, "intent");
  if (intents.length > 0) {
    lines.push("", "  Intents");
    for (const p of intents) {
      lines.push(
        `    ${p.intent}: ${p.figures.runs} runs, ${formatRate(p.figures.successRate)} succeed, ${formatRate(p.figures.failureRate)} fail`,
      );
    }
  }

  lines.push("", "  Recommendations");
  if (report.recommendations.length === 0)
    lines.push(style.dim("    none: nothing stands out in this window"));
  for (const r of report.recommendations) {
    lines.push(`    ${style.yellow(`[${r.kind}]`)}${r.step ? ` ${r.step}:` : ""} ${r.message}`);
    lines.push(style.dim(`      evidence: ${evidenceLine(r.evidence)}`));
  }
  return lines;
}

/** Left-aligned text columns, right-aligned figures. */
function table(rows: string[][], style: Style): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row, index) => {
    const text = row
      .map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join("  ")
      .trimEnd();
    return index === 0 ? style.dim(text) : text;
  });
}
