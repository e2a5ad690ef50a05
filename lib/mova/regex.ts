/**
 * The one place that runs a document's regular expressions (conditions' `matches` and
 * `matches_regex`; input validation's `pattern` belongs here too). They run on RE2JS, a pure-JavaScript port of RE2: matching takes time
 * linear in the input, so no pattern can stall the event loop the way `^(a+)+$` stalls a
 * backtracking engine. It needs no native build (the `re2` bindings would have to be built
 * for Lambda's OS) and no WebAssembly start-up. The price: what needs backtracking
 * (backreferences `\1`, lookahead `(?=…)`) is not supported, and such a pattern is a
 * validation error. Linear is not free: a large program (`.{1,1000}` thirty times) is linear
 * with a large factor, so compiled programs are capped too.
 */
import { RE2JS } from "re2js";

/** The longest pattern accepted. */
export const MAX_PATTERN_LENGTH = 500;
export const MAX_REGEX_PATTERN_LENGTH = MAX_PATTERN_LENGTH;
/** The largest compiled program accepted (RE2 instructions); bounds the per-character cost. */
export const MAX_PATTERN_PROGRAM = 4_000;
/** Only this much of a value is searched. */
export const MAX_MATCHED_TEXT = 10_000;

const cache = new Map<string, RE2JS | { error: string }>();
const CACHE_LIMIT = 1_000;

function programSize(compiled: RE2JS): number {
  const prog = (compiled as unknown as { re2Input?: { prog?: { inst?: unknown[] } } }).re2Input?.prog;
  return prog?.inst?.length ?? 0;
}

function compileUncached(pattern: string): RE2JS | { error: string } {
  if (pattern.length > MAX_PATTERN_LENGTH)
    return { error: `the pattern is longer than ${MAX_PATTERN_LENGTH}` };
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { error: `${message} (patterns run on RE2: no backreferences or lookaround)` };
  }
  if (programSize(compiled) > MAX_PATTERN_PROGRAM)
    return { error: "the pattern is too large once compiled (reduce its repetition counts)" };
  return compiled;
}

/** Compiles a pattern (cached), or says why it cannot be used. */
export function compilePattern(pattern: unknown): RE2JS | { error: string } {
  if (typeof pattern !== "string") return { error: "the pattern must be a string" };
  let compiled = cache.get(pattern);
  if (compiled === undefined) {
    compiled = compileUncached(pattern);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(pattern, compiled);
  }
  return compiled;
}

/** Why a pattern cannot be used, or undefined when it can. */
export function patternProblem(pattern: unknown): string | undefined {
  const compiled = compilePattern(pattern);
  return compiled instanceof RE2JS ? undefined : compiled.error;
}

/** `start`: the pattern must match at the start of the text (`matches_regex`, as the specification's `re.match`). */
interface PatternOptions {
  anchor?: "anywhere" | "start";
}

/**
 * Whether `pattern` matches in `text` (anywhere, like RegExp.test, or at its start); an
 * unusable pattern matches nothing.
 */
export function testPattern(pattern: string, text: string, options: PatternOptions = {}): boolean {
  if (options.anchor === "start") {
    // Anchored only once the pattern itself is known to be usable: `^(?:` + `)` could
    // otherwise turn an unbalanced pattern into a valid one.
    if (patternProblem(pattern) !== undefined) return false;
    return testPattern(`^(?:${pattern})`, text);
  }
  const compiled = compilePattern(pattern);
  if (!(compiled instanceof RE2JS)) return false;
  return compiled.test(text.length > MAX_MATCHED_TEXT ? text.slice(0, MAX_MATCHED_TEXT) : text);
}
