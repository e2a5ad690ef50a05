/** `mova validate <file…> [--json]`. */
import { CliError, type CliIo, EXIT, styleFor, writeLine } from "../io.ts";
import { checkFile, type FileReport, issueLine } from "../load.ts";

/** What each form means for the reader of `mova validate`. */
const FORM_NOTES = {
  sections: "sections form",
  classes: "the specification's classes form, read into sections: `mova parse` prints them",
} as const;

export async function validateCommand(
  io: CliIo,
  files: string[],
  options: { json?: boolean },
): Promise<number> {
  const style = styleFor(io);
  const reports: Array<Omit<FileReport, "document">> = [];
  let unreadable = false;
  for (const file of files) {
    try {
      const { document: _document, ...report } = await checkFile(file);
      reports.push(report);
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      unreadable = true;
      reports.push({
        file,
        valid: false,
        errors: [{ code: error.code, path: "$", message: error.message }],
        warnings: [],
      });
      if (!options.json) writeLine(io.stderr, style.red(error.message));
      continue;
    }
    if (options.json) continue;
    const report = reports.at(-1)!;
    const counts = report.valid
      ? `${report.warnings.length} warning${report.warnings.length === 1 ? "" : "s"}`
      : `${report.errors.length} error${report.errors.length === 1 ? "" : "s"}, ${report.warnings.length} warning${report.warnings.length === 1 ? "" : "s"}`;
    writeLine(
      io.stdout,
      `${file}: ${report.valid ? style.green("valid") : style.red("invalid")} (${counts}; ${FORM_NOTES[report.form ?? "sections"]})`,
    );
    for (const issue of report.errors) writeLine(io.stdout, style.red(issueLine(file, "error", issue)));
    for (const issue of report.warnings)
      writeLine(io.stdout, style.yellow(issueLine(file, "warning", issue)));
  }
  if (options.json) writeLine(io.stdout, JSON.stringify(reports));
  if (unreadable) return EXIT.usage;
  return reports.every((report) => report.valid) ? EXIT.ok : EXIT.failed;
}
