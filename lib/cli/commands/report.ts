/** `mova report --html <file>`: the analysis report as one self-contained HTML page. */
import { writeFile } from "node:fs/promises";
import { type HistorySourceOptions, reportFromSource } from "../history-source.ts";
import { CliError, type CliIo, EXIT, writeLine } from "../io.ts";
import { renderReportHtml } from "../report-html.ts";

interface ReportOptions extends HistorySourceOptions {
  html: string;
  title?: string;
}

export async function reportCommand(io: CliIo, options: ReportOptions): Promise<number> {
  const report = await reportFromSource(io, options);
  const html = renderReportHtml(report, options.title ? { title: options.title } : {});
  try {
    await writeFile(options.html, html, "utf8");
  } catch (error) {
    throw new CliError("file_unwritable", `${options.html}: cannot write (${(error as Error).message})`);
  }
  const runs = report.protocols.reduce((sum, p) => sum + p.statistics.total, 0);
  writeLine(
    io.stderr,
    `wrote ${options.html}: ${report.protocols.length} protocol${report.protocols.length === 1 ? "" : "s"}, ${runs} execution${runs === 1 ? "" : "s"}`,
  );
  return EXIT.ok;
}
