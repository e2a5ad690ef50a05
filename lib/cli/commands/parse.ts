/** `mova parse <file> [--json]`: the document as the engine sees it, defaults filled in. */
import { type CliIo, EXIT, styleFor, writeLine } from "../io.ts";
import { checkFile, issueLine } from "../load.ts";

export async function parseCommand(io: CliIo, file: string, options: { json?: boolean }): Promise<number> {
  const style = styleFor(io);
  const report = await checkFile(file);
  for (const issue of report.warnings) writeLine(io.stderr, style.yellow(issueLine(file, "warning", issue)));
  if (!report.valid || !report.document) {
    for (const issue of report.errors) writeLine(io.stderr, style.red(issueLine(file, "error", issue)));
    writeLine(io.stderr, style.red(`${file}: invalid document, nothing to print`));
    return EXIT.failed;
  }
  writeLine(
    io.stdout,
    options.json ? JSON.stringify(report.document) : JSON.stringify(report.document, null, 2),
  );
  return EXIT.ok;
}
