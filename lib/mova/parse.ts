/**
 * Reading MOVA source text (JSON or YAML) into a plain value. Validation is a separate
 * step (validate.ts); this module only turns text into data, with a precise position
 * when the text is not well formed.
 */
import { MovaError } from "../errors.ts";
import { parseDocument } from "yaml";

export type SourceFormat = "json" | "yaml";

export class DocumentParseError extends MovaError {
  /** 1-based. */
  readonly line: number | undefined;
  /** 1-based. */
  readonly column: number | undefined;
  readonly format: SourceFormat;
  constructor(message: string, format: SourceFormat, position?: { line: number; column: number }) {
    super("parse_error", message);
    this.format = format;
    this.line = position?.line;
    this.column = position?.column;
  }
}

/** Aliases a YAML document may expand, against "billion laughs" documents. */
const MAX_YAML_ALIAS_COUNT = 200;

/** The format a file name implies (`.json`, `.yaml`, `.yml`), else `undefined`. */
export function formatFromFilename(name: string): SourceFormat | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".yaml") || lower.endsWith(".yml")) return "yaml";
  return undefined;
}

/** JSON when the first non-space character opens an object or a list, else YAML. */
export function guessFormat(text: string): SourceFormat {
  const first = /\S/.exec(stripBom(text))?.[0];
  return first === "{" || first === "[" ? "json" : "yaml";
}

/**
 * Parses JSON or YAML text into a plain value (not yet validated). The format is guessed
 * when absent. Throws DocumentParseError (code `parse_error`) with the line and column.
 */
export function parseSource(text: string, format?: SourceFormat): unknown {
  if (typeof text !== "string") throw new DocumentParseError("the document must be text", format ?? "json");
  const source = stripBom(text);
  const chosen = format ?? guessFormat(source);
  if (source.trim() === "")
    throw new DocumentParseError("the document is empty", chosen, { line: 1, column: 1 });
  return chosen === "json" ? parseJson(source) : parseYaml(source);
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function parseJson(source: string): unknown {
  try {
    return JSON.parse(source);
  } catch (error) {
    // V8 does not always say where the error is, so the text is scanned for the spot.
    const found = findJsonErrorOffset(source);
    const offset = Math.max(found, 0);
    const position = positionAt(source, offset);
    const reason = describeJsonError(source, offset, (error as Error).message);
    throw new DocumentParseError(
      `invalid JSON at line ${position.line}, column ${position.column}: ${reason}`,
      "json",
      position,
    );
  }
}

function parseYaml(source: string): unknown {
  const document = parseDocument(source, { uniqueKeys: true, prettyErrors: true, strict: true });
  const problem = document.errors[0];
  if (problem) {
    const at = problem.linePos?.[0];
    const position = at ? { line: at.line, column: at.col } : positionAt(source, problem.pos[0]);
    const reason = firstLine(problem.message);
    throw new DocumentParseError(
      `invalid YAML at line ${position.line}, column ${position.column}: ${reason}`,
      "yaml",
      position,
    );
  }
  try {
    return document.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (error) {
    throw new DocumentParseError(`invalid YAML: ${(error as Error).message}`, "yaml");
  }
}

const MAX_REASON_LENGTH = 160;

/** The YAML library's reason without its position suffix, clipped: it may quote a whole scalar. */
function firstLine(message: string): string {
  const reason = (message.split("\n")[0] ?? message).replace(/ at line \d+, column \d+:?$/, "").trim();
  return reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH)}…` : reason;
}

/** 1-based line and column of a character offset. */
function positionAt(text: string, offset: number): { line: number; column: number } {
  const clamped = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < clamped; i++) {
    if (text.charCodeAt(i) === 10) {
      line += 1;
      lineStart = i + 1;
    }
  }
  return { line, column: clamped - lineStart + 1 };
}

function describeJsonError(source: string, offset: number, native: string): string {
  const positional = /^(.*?) in JSON at position \d+/.exec(native)?.[1];
  if (offset >= source.length) return "unexpected end of the document";
  if (positional) return positional;
  const ch = source[offset];
  return ch === undefined ? native : `unexpected ${JSON.stringify(ch)}`;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING_BODY = /(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*/y;

/**
 * The offset of the first character that makes the text invalid JSON (the text length
 * when it ends too early). Iterative, so deep nesting cannot overflow the stack.
 */
function findJsonErrorOffset(text: string): number {
  const stack: Array<"object" | "array"> = [];
  // What may come next: a value, an object key (or `}` right after `{`), etc.
  type Expect = "value" | "first-value" | "key" | "first-key" | "colon" | "after-value";
  let expect: Expect = "value";
  let i = 0;
  let done = false;
  const skipSpace = () => {
    while (i < text.length && /[ \t\n\r]/.test(text[i] as string)) i++;
  };
  const readString = (): boolean => {
    if (text[i] !== '"') return false;
    STRING_BODY.lastIndex = i + 1;
    STRING_BODY.exec(text);
    const end = STRING_BODY.lastIndex;
    if (text[end] !== '"') {
      i = end;
      return false;
    }
    i = end + 1;
    return true;
  };
  while (true) {
    skipSpace();
    if (i >= text.length) return done ? -1 : text.length;
    if (done) return i;
    const ch = text[i] as string;
    switch (expect) {
      case "value":
      case "first-value": {
        if (ch === "]" && expect === "first-value") {
          stack.pop();
          i++;
          expect = "after-value";
          break;
        }
        if (ch === "{") {
          stack.push("object");
          i++;
          expect = "first-key";
        } else if (ch === "[") {
          stack.push("array");
          i++;
          expect = "first-value";
        } else if (ch === '"') {
          if (!readString()) return i;
          expect = "after-value";
        } else if (text.startsWith("true", i) || text.startsWith("null", i)) {
          i += 4;
          expect = "after-value";
        } else if (text.startsWith("false", i)) {
          i += 5;
          expect = "after-value";
        } else {
          NUMBER.lastIndex = i;
          if (!NUMBER.exec(text)) return i;
          i = NUMBER.lastIndex;
          expect = "after-value";
        }
        break;
      }
      case "key":
      case "first-key": {
        if (ch === "}" && expect === "first-key") {
          stack.pop();
          i++;
          expect = "after-value";
          break;
        }
        if (!readString()) return i;
        expect = "colon";
        break;
      }
      case "colon":
        if (ch !== ":") return i;
        i++;
        expect = "value";
        break;
      case "after-value": {
        const top = stack.at(-1);
        if (top === undefined) return i;
        if (ch === ",") {
          i++;
          expect = top === "object" ? "key" : "value";
        } else if ((ch === "}" && top === "object") || (ch === "]" && top === "array")) {
          stack.pop();
          i++;
        } else return i;
        break;
      }
    }
    if (expect === "after-value" && stack.length === 0) done = true;
  }
}
