/**
 * The one place that runs a document's regular expressions for `matches_regex`, so that the
 * engine behind it can be replaced (by a linear-time one) without touching its callers.
 * Patterns are length-limited and texts clipped, to keep evaluation predictable.
 */

/** The longest pattern accepted. */
export const MAX_REGEX_PATTERN_LENGTH = 500;
/** Only this much of a text is matched against. */
const MAX_TEXT_LENGTH = 10_000;
const CACHE_LIMIT = 1_000;

/** `start`: the pattern must match at the start of the text (as the specification's `re.match`). */
interface PatternOptions {
  anchor?: "anywhere" | "start";
}

const cache = new Map<string, RegExp | null>();

function compile(pattern: string, anchor: "anywhere" | "start"): RegExp | { error: string } {
  if (pattern.length > MAX_REGEX_PATTERN_LENGTH)
    return { error: `the pattern is longer than ${MAX_REGEX_PATTERN_LENGTH}` };
  try {
    // The sticky flag with lastIndex 0 matches at the start only.
    return new RegExp(pattern, anchor === "start" ? "uy" : "u");
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** Why a pattern cannot be used, or undefined when it can. */
export function patternProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== "string") return "the pattern must be a string";
  const compiled = compile(pattern, "anywhere");
  return compiled instanceof RegExp ? undefined : compiled.error;
}

/** Whether `text` matches `pattern`; a pattern that cannot be used matches nothing. */
export function testPattern(pattern: string, text: string, options: PatternOptions = {}): boolean {
  const anchor = options.anchor ?? "anywhere";
  const key = `${anchor}\u0000${pattern}`;
  let regex = cache.get(key);
  if (regex === undefined) {
    const compiled = compile(pattern, anchor);
    regex = compiled instanceof RegExp ? compiled : null;
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, regex);
  }
  if (!regex) return false;
  regex.lastIndex = 0;
  return regex.test(text.slice(0, MAX_TEXT_LENGTH));
}
