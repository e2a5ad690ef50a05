/**
 * Reading a document from a file for a command: the file, its format, parsing and
 * validation, each failure turned into a precise message that names the file.
 */
import { readFile } from "node:fs/promises";
import { formatFromFilename, parseSource } from "../mova/parse.ts";
import type { DocumentForm } from "../mova/classes.ts";
import type { MovaDocument } from "../mova/schema.ts";
import { validateDocument } from "../mova/validate.ts";
import { CliError } from "./io.ts";

interface Issue {
  code: string;
  path: string;
  message: string;
}

export interface FileReport {
  file: string;
  valid: boolean;
  errors: Issue[];
  warnings: Issue[];
  /** The form the document was written in (absent when it could not be read). */
  form?: DocumentForm;
  document?: MovaDocument;
}

/** Reads a file's text; a missing or unreadable file is a usage error (exit 2). */
async function readDocumentFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new CliError("file_not_found", `${file}: file not found`);
    if (code === "EISDIR") throw new CliError("file_unreadable", `${file}: is a directory, not a document`);
    if (code === "EACCES") throw new CliError("file_unreadable", `${file}: permission denied`);
    throw new CliError("file_unreadable", `${file}: cannot read (${(error as Error).message})`);
  }
}

/** Parses the text; a syntax error names the file and, when known, the line and column. */
function parseDocumentText(file: string, text: string): unknown {
  try {
    return parseSource(text, formatFromFilename(file));
  } catch (error) {
    const { line, column } = error as { line?: unknown; column?: unknown };
    const message = (error as Error).message;
    const at =
      typeof line === "number" && !/line \d+/i.test(message)
        ? `:${line}${typeof column === "number" ? `:${column}` : ""}`
        : "";
    throw new CliError("parse_error", `${file}${at}: parse error: ${message}`);
  }
}

/** A JSON path the way the messages show it: `$.protocols[0].steps[2].next_step`. */
function formatPath(path: unknown): string {
  if (Array.isArray(path)) {
    let out = "$";
    for (const segment of path) out += typeof segment === "number" ? `[${segment}]` : `.${String(segment)}`;
    return out;
  }
  if (typeof path !== "string" || path === "") return "$";
  return path.startsWith("$") ? path : `$.${path}`;
}

function toIssue(raw: { code: string; path: unknown; message: string }): Issue {
  return { code: raw.code, path: formatPath(raw.path), message: raw.message };
}

/** Reads, parses and validates one file. Throws CliError only when it cannot be read or parsed. */
export async function checkFile(file: string): Promise<FileReport> {
  const text = await readDocumentFile(file);
  const input = parseDocumentText(file, text);
  const result = validateDocument(input);
  return {
    file,
    valid: result.valid,
    errors: result.errors.map(toIssue),
    warnings: result.warnings.map(toIssue),
    form: result.form,
    ...(result.valid && result.document ? { document: result.document } : {}),
  };
}

/** One issue line as `file: error [code] $.path: message`. */
export function issueLine(file: string, kind: "error" | "warning", issue: Issue): string {
  return `${file}: ${kind} [${issue.code}] ${issue.path}: ${issue.message}`;
}

/**
 * The document a command runs: an invalid one is a usage error (exit 2) listing every
 * error with its path; warnings are returned for the caller to show.
 */
export async function loadRunnableDocument(
  file: string,
): Promise<{ document: MovaDocument; warnings: Issue[] }> {
  const report = await checkFile(file);
  if (!report.valid || !report.document) {
    const lines = report.errors.map((issue) => issueLine(file, "error", issue));
    throw new CliError(
      "invalid_document",
      `${file}: invalid document (${report.errors.length} error${report.errors.length === 1 ? "" : "s"})\n${lines.join("\n")}`,
    );
  }
  return { document: report.document, warnings: report.warnings };
}
