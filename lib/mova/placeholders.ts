/**
 * Placeholders: `{name}` and dotted paths `{a.b.0.c}`; `{{` and `}}` are literal braces.
 *
 * Text in braces that could not be a path at all (white space, quotes, colons: a JSON
 * example inside a prompt) is literal text. Text in braces made only of path characters
 * but not a well-formed path (`{}`, `{a..b}`, `{.a}`) is a malformed placeholder.
 */

type TemplatePart =
  | { kind: "text"; text: string }
  | { kind: "placeholder"; path: string; raw: string }
  | { kind: "invalid"; raw: string; offset: number };

const SEGMENT = String.raw`[\p{L}\p{N}_$-]+`;
const VALID_PATH = new RegExp(String.raw`^[\p{L}_$][\p{L}\p{N}_$-]*(?:\.${SEGMENT})*$`, "u");
/** Only path characters (letters, digits, `_`, `$`, `-`, `.`) or nothing at all. */
const PATH_LIKE = /^[\p{L}\p{N}_$.-]*$/u;

const cache = new Map<string, TemplatePart[]>();
const CACHE_LIMIT = 2_000;

/** Whether `text` is a well-formed dotted path (`a.b.0.c`), as a placeholder holds. */
export function isPath(text: string): boolean {
  return VALID_PATH.test(text);
}

/** Splits a template into literal text, placeholders and malformed placeholders. */
export function parseTemplate(template: string): TemplatePart[] {
  const cached = cache.get(template);
  if (cached) return cached;
  const parts: TemplatePart[] = [];
  let text = "";
  let i = 0;
  while (i < template.length) {
    const ch = template[i];
    if (ch === "{" && template[i + 1] === "{") {
      text += "{";
      i += 2;
      continue;
    }
    if (ch === "}" && template[i + 1] === "}") {
      text += "}";
      i += 2;
      continue;
    }
    if (ch === "{") {
      const close = template.indexOf("}", i + 1);
      const nextOpen = template.indexOf("{", i + 1);
      if (close !== -1 && (nextOpen === -1 || nextOpen > close)) {
        const inner = template.slice(i + 1, close);
        const raw = template.slice(i, close + 1);
        if (VALID_PATH.test(inner)) {
          if (text) parts.push({ kind: "text", text });
          text = "";
          parts.push({ kind: "placeholder", path: inner, raw });
          i = close + 1;
          continue;
        }
        if (PATH_LIKE.test(inner)) {
          if (text) parts.push({ kind: "text", text });
          text = "";
          parts.push({ kind: "invalid", raw, offset: i });
          i = close + 1;
          continue;
        }
      }
    }
    text += ch;
    i += 1;
  }
  if (text) parts.push({ kind: "text", text });
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(template, parts);
  return parts;
}

/** The placeholder paths a template reads, in order, without duplicates. */
export function placeholdersOf(template: string): string[] {
  const seen = new Set<string>();
  for (const part of parseTemplate(template)) if (part.kind === "placeholder") seen.add(part.path);
  return [...seen];
}

/** Reads a dotted path (`a.b.0.c`) from a value; `undefined` when any segment is missing. */
export function getPath(root: unknown, path: string): unknown {
  let current: unknown = root;
  for (const segment of path.split(".")) {
    if (current === null || current === undefined) return undefined;
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(segment)) return undefined;
      current = current[Number(segment)];
    } else if (typeof current === "object") {
      if (!Object.hasOwn(current, segment)) return undefined;
      current = (current as Record<string, unknown>)[segment];
    } else {
      return undefined;
    }
  }
  return current;
}

/** Looks a placeholder path up; `undefined` means it has no value. */
export type Resolver = (path: string) => unknown;

interface RenderResult {
  text: string;
  /** Placeholders that had no value and were left as written. */
  unresolved: string[];
}

/** How a value shows inside text: strings as they are, everything else as JSON. */
export function stringifyValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return String(value);
  if (value === null) return "null";
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    return String(value);
  }
}

/** Renders a template: placeholders with a value are replaced, the others stay as written. */
export function renderTemplate(template: string, resolve: Resolver): RenderResult {
  const unresolved: string[] = [];
  let text = "";
  for (const part of parseTemplate(template)) {
    if (part.kind === "text") text += part.text;
    else if (part.kind === "invalid") text += part.raw;
    else {
      const value = resolve(part.path);
      if (value === undefined) {
        text += part.raw;
        if (!unresolved.includes(part.path)) unresolved.push(part.path);
      } else text += stringifyValue(value);
    }
  }
  return { text, unresolved };
}

/**
 * Renders every string inside a JSON value. A string that is exactly one placeholder
 * takes the placeholder's value with its type (so a JSON body can carry numbers and objects).
 */
export function renderValue(value: unknown, resolve: Resolver, unresolved: string[] = []): unknown {
  if (typeof value === "string") {
    const parts = parseTemplate(value);
    if (parts.length === 1 && parts[0]?.kind === "placeholder") {
      const resolved = resolve(parts[0].path);
      if (resolved !== undefined) return resolved;
    }
    const rendered = renderTemplate(value, resolve);
    for (const path of rendered.unresolved) if (!unresolved.includes(path)) unresolved.push(path);
    return rendered.text;
  }
  if (Array.isArray(value)) return value.map((item) => renderValue(item, resolve, unresolved));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = renderValue(item, resolve, unresolved);
    return out;
  }
  return value;
}
