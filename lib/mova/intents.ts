/**
 * Intent matching: a document's intent patterns against a message (whole words, any script,
 * any case), and reading an LLM's answer as one of the declared intents.
 */
import type { Intent, MovaDocument } from "./schema.ts";

interface IntentMatch {
  intent: Intent;
  /** The pattern that matched, as written in the document. */
  pattern: string;
}

/** Letters, digits and combining marks of any script: what a word is made of. */
const WORD_CHAR = String.raw`[\p{L}\p{N}\p{M}_]`;
const regexCache = new Map<string, RegExp | null>();
const REGEX_CACHE_LIMIT = 5_000;

function escapeRegex(text: string): string {
  // Only the characters a Unicode-mode pattern lets one escape.
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

/** A pattern as a whole-word, case-insensitive regular expression; runs of spaces match any white space. */
function patternRegex(pattern: string): RegExp | null {
  let regex = regexCache.get(pattern);
  if (regex !== undefined) return regex;
  const words = pattern.normalize("NFC").trim().split(/\s+/).filter(Boolean).map(escapeRegex);
  regex =
    words.length === 0
      ? null
      : new RegExp(`(?<!${WORD_CHAR})${words.join(String.raw`\s+`)}(?!${WORD_CHAR})`, "iu");
  if (regexCache.size >= REGEX_CACHE_LIMIT) regexCache.clear();
  regexCache.set(pattern, regex);
  return regex;
}

/** Whether a pattern occurs in the text as whole words, ignoring case. */
export function patternMatches(pattern: string, text: string): boolean {
  return patternRegex(pattern)?.test(text.normalize("NFC")) ?? false;
}

/**
 * The intent a text expresses by its patterns. Among matching intents the highest
 * priority wins; ties go to the longest matching pattern, then to document order.
 */
export function matchIntent(document: MovaDocument, text: string): IntentMatch | undefined {
  const normalized = text.normalize("NFC");
  let best: { intent: Intent; pattern: string; length: number } | undefined;
  for (const intent of document.intents) {
    let longest: { pattern: string; length: number } | undefined;
    for (const pattern of intent.patterns) {
      const length = pattern.trim().length;
      if (longest && length <= longest.length) continue;
      if (patternRegex(pattern)?.test(normalized)) longest = { pattern, length };
    }
    if (!longest) continue;
    const better =
      !best ||
      intent.priority > best.intent.priority ||
      (intent.priority === best.intent.priority && longest.length > best.length);
    if (better) best = { intent, ...longest };
  }
  return best ? { intent: best.intent, pattern: best.pattern } : undefined;
}

export function classificationPrompt(document: MovaDocument): string {
  const lines = document.intents.map((intent) => {
    const about = intent.description ? `${intent.description}; ` : "";
    const examples = intent.patterns
      .slice(0, 8)
      .map((p) => JSON.stringify(p))
      .join(", ");
    return `- ${intent.name}: ${about}examples: ${examples}`;
  });
  return [
    "You classify a user's message into one of the intents listed below.",
    "Answer with exactly one intent name from the list, or none when no intent fits.",
    "Answer with the name only: no explanation, no punctuation.",
    "",
    "Intents:",
    ...lines,
  ].join("\n");
}

/** The intent an LLM answer names, if it names exactly one declared intent. */
export function intentFromAnswer(document: MovaDocument, answer: string): Intent | undefined {
  const firstLine = answer.trim().split(/\r?\n/)[0] ?? "";
  const cleaned = firstLine
    .trim()
    .replace(/^[\s"'`«»“”„‘’.,:;!?*()[\]{}-]+|[\s"'`«»“”„‘’.,:;!?*()[\]{}-]+$/gu, "")
    .toLowerCase();
  if (!cleaned || cleaned === "none") return undefined;
  return document.intents.find((intent) => intent.name.toLowerCase() === cleaned);
}
