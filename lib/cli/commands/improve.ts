/**
 * `mova improve <file> --history <jsonl> [--apply <id>] [--output <file>]`: the analysis's
 * recommendations for the document's protocols, each with its id, the evidence in one line
 * and the change it proposes (its JSON Patch as a diff). `--apply <id>` applies that
 * recommendation's patch to the file's document, validates the result, and writes it to
 * `--output` (or prints it). The offline twin of POST .../recommendations/{id}/apply.
 */
import { writeFile } from "node:fs/promises";
import {
  type ActionableRecommendation,
  actionable,
  applyPatch,
  describePatch,
} from "../../analysis/patches.ts";
import { validateDocument } from "../../mova/validate.ts";
import { type HistorySourceOptions, reportFromSource } from "../history-source.ts";
import { CliError, type CliIo, EXIT, styleFor, writeLine } from "../io.ts";
import { issueLine, loadRunnableDocument, readSource } from "../load.ts";

interface ImproveOptions extends Omit<HistorySourceOptions, "doc"> {
  apply?: string;
  output?: string;
  json?: boolean;
}

export async function improveCommand(io: CliIo, file: string, options: ImproveOptions): Promise<number> {
  if (options.history === undefined) throw new CliError("usage", "give --history <file.jsonl>");
  const style = styleFor(io);
  const { document } = await loadRunnableDocument(file);
  const source = await readSource(file);
  const names = new Set(document.protocols.map((p) => p.name));
  const report = await reportFromSource(io, { ...options, doc: file });
  const recommendations: ActionableRecommendation[] = report.protocols
    .filter((p) => names.has(p.protocol))
    .flatMap((p) => actionable(p.recommendations, source, null));

  if (options.apply === undefined) {
    if (options.json) {
      writeLine(io.stdout, JSON.stringify(recommendations, null, 2));
      return EXIT.ok;
    }
    if (recommendations.length === 0) {
      writeLine(io.stdout, "No recommendations: the history shows nothing to change.");
      return EXIT.ok;
    }
    for (const r of recommendations) {
      writeLine(io.stdout, `${style.bold(r.id)} ${r.kind} ${r.protocol}${r.step ? `/${r.step}` : ""}`);
      writeLine(io.stdout, `  ${r.statement}`);
      if (r.patch)
        for (const line of describePatch(r.patch)) writeLine(io.stdout, style.green(`  + ${line}`));
      else writeLine(io.stdout, style.dim(`  (no automatic change) ${r.message}`));
    }
    return EXIT.ok;
  }

  const chosen = recommendations.find((r) => r.id === options.apply);
  if (!chosen) {
    writeLine(io.stderr, style.red(`no recommendation ${options.apply} for ${file} in this history`));
    return EXIT.failed;
  }
  if (!chosen.patch) {
    writeLine(io.stderr, style.red(`${chosen.id} needs a person's judgement: it carries no patch`));
    return EXIT.failed;
  }
  const patched = applyPatch(source, chosen.patch);
  if (!patched.ok) {
    writeLine(io.stderr, style.red(`${chosen.id} does not apply to ${file}: ${patched.error}`));
    return EXIT.failed;
  }
  const validation = validateDocument(patched.document);
  if (!validation.valid) {
    for (const issue of validation.errors) {
      writeLine(
        io.stderr,
        style.red(
          issueLine(file, "error", { code: issue.code, path: String(issue.path), message: issue.message }),
        ),
      );
    }
    return EXIT.failed;
  }
  const text = `${JSON.stringify(patched.document, null, 2)}\n`;
  if (options.output) {
    await writeFile(options.output, text, "utf8");
    writeLine(
      io.stderr,
      `${chosen.id} applied: ${describePatch(chosen.patch).join("; ")} → ${options.output}`,
    );
  } else io.stdout.write(text);
  return EXIT.ok;
}
