/**
 * Prompt terms: the words of a rendered prompt that say something about it. Unicode-aware
 * (any script's letters and digits), lower-cased; stop words (English, Ukrainian, Russian),
 * leftover placeholders (`{name}`), numbers, one-letter words and words over 40 characters
 * are dropped. Each prompt yields each term once (the analysis counts prompts containing a
 * term, not occurrences).
 */

const STOP_WORDS_EN =
  "a about above after again against all am an and any are as at be because been before being below between both but by can could did do does doing down during each few for from further had has have having he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such than that the their theirs them themselves then there these they this those through to too under until up very was we were what when where which while who whom why will with would you your yours yourself yourselves please also may might must shall us let".split(
    " ",
  );
const STOP_WORDS_UK =
  "і й та а але або що як це той та ті цей ця ці в у на з із зі до від по за для про при над під не ні так вже ще чи же б би бо то його її їх він вона воно вони ми ви я ти мене тебе нам вам є був була було були буде будь який яка яке які де коли тут там всі весь вся все свій своя своє свої також лише тільки може треба".split(
    " ",
  );
const STOP_WORDS_RU =
  "и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти нас про всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им более всегда конечно всю между это пожалуйста".split(
    " ",
  );

export const STOP_WORDS: ReadonlySet<string> = new Set([
  ...STOP_WORDS_EN,
  ...STOP_WORDS_UK,
  ...STOP_WORDS_RU,
]);

const MAX_TERM_LENGTH = 40;

/** Character classes of the Basic Multilingual Plane, filled in as met: 0 unknown. */
const OTHER = 1;
const LETTER = 2;
const DIGIT = 3;
const SPACE = 4;
const bmpClass = new Uint8Array(65_536);
// ʼ (U+02BC) is a modifier letter, but Ukrainian writes it as the apostrophe (пʼять).
bmpClass[0x2bc] = OTHER;
const IS_LETTER = /\p{L}/u;
const IS_DIGIT = /\p{N}/u;
const IS_SPACE = /\s/u;

function classify(char: string): number {
  return IS_LETTER.test(char) ? LETTER : IS_DIGIT.test(char) ? DIGIT : IS_SPACE.test(char) ? SPACE : OTHER;
}

function classAt(text: string, index: number): number {
  const code = text.charCodeAt(index);
  if (code < 128) {
    if ((code >= 97 && code <= 122) || (code >= 65 && code <= 90)) return LETTER;
    if (code >= 48 && code <= 57) return DIGIT;
    return code <= 32 ? SPACE : OTHER;
  }
  if (code >= 0xd800 && code <= 0xdbff) return classify(String.fromCodePoint(text.codePointAt(index)!));
  let known = bmpClass[code]!;
  if (known === 0) {
    known = classify(text[index]!);
    bmpClass[code] = known;
  }
  return known;
}

/** 2 for a surrogate pair, else 1 (a lone surrogate is one unit). */
const widthAt = (text: string, index: number): number => ((text.codePointAt(index) ?? 0) > 0xffff ? 2 : 1);

const isApostrophe = (code: number): boolean => code === 39 || code === 0x2019 || code === 0x2bc;

/**
 * The distinct terms of a text, in order of first appearance. A term is a run of letters and
 * digits (any script) with inner apostrophes (don't, п'ять); `{placeholder}` spans (no braces
 * or white space inside) are skipped. Written as a scanner: it runs once per distinct prompt
 * of a history of millions.
 */
export function extractTerms(text: string): string[] {
  const seen = new Set<string>();
  const length = text.length;
  let i = 0;
  while (i < length) {
    const code = text.charCodeAt(i);
    if (code === 123) {
      let j = i + 1;
      while (j < length) {
        const c = text.charCodeAt(j);
        if (c === 123 || c === 125 || classAt(text, j) === SPACE) break;
        j += 1;
      }
      i = j < length && text.charCodeAt(j) === 125 ? j + 1 : i + 1;
      continue;
    }
    let kind = classAt(text, i);
    if (kind !== LETTER && kind !== DIGIT) {
      i += widthAt(text, i);
      continue;
    }
    const start = i;
    let hasLetter = false;
    let hasCurlyApostrophe = false;
    for (;;) {
      if (kind === LETTER) hasLetter = true;
      i += widthAt(text, i);
      if (i >= length) break;
      kind = classAt(text, i);
      if (kind === LETTER || kind === DIGIT) continue;
      const c = text.charCodeAt(i);
      if (isApostrophe(c) && i + 1 < length) {
        const after = classAt(text, i + 1);
        if (after === LETTER || after === DIGIT) {
          if (c !== 39) hasCurlyApostrophe = true;
          i += 1;
          kind = after;
          continue;
        }
      }
      break;
    }
    if (!hasLetter) continue;
    const span = i - start;
    if (span < 2 || span > MAX_TERM_LENGTH) continue;
    let term = text.slice(start, i).toLowerCase();
    if (hasCurlyApostrophe) term = term.replace(/[’ʼ]/gu, "'");
    if (!STOP_WORDS.has(term)) seen.add(term);
  }
  return [...seen];
}

/**
 * The term lists the cache has made since it was last emptied, numbered in the order made:
 * while the cache holds a prompt, its list keeps its number, so a tally can count prompts in
 * an array by number instead of in a map by list. The numbering starts over (a new epoch)
 * when the cache is emptied.
 */
let numbered: Array<readonly string[]> = [];
let epoch = 0;

/** Which numbering `termsNumberOf` gives now: numbers of different epochs mean different lists. */
export function termListEpoch(): number {
  return epoch;
}

/** The term list of a number `termsNumberOf` gave in the current epoch. */
export function numberedTermList(number: number): readonly string[] {
  return numbered[number]!;
}

/** Prompt → the number of its term list in the current table. */
const cache = new Map<string, number>();
const CACHE_LIMIT = 16_384;
/** Longer prompts are tokenised every time, so the cache stays within a few megabytes. */
const CACHEABLE_LENGTH = 1_000;

/**
 * In front of the cache, a two-way set-associative index by a key sampled from the length
 * and up to 32 characters: a prompt read from a record is a fresh string, and hashing all of
 * it for the map costs more than sampling it and comparing it with the prompts of its set.
 * An index entry only ever holds a prompt and the number the cache holds for it, and the
 * index is emptied with the cache, so the answers (the very same numbers) are the cache's.
 */
const INDEX_SETS = 2048;
const indexPrompts: Array<string | undefined> = new Array(INDEX_SETS * 2).fill(undefined);
const indexNumbers = new Int32Array(INDEX_SETS * 2);

/** The first of the two index entries of a prompt's set. */
function setOf(prompt: string): number {
  const length = prompt.length;
  const stride = length > 96 ? Math.ceil(length / 32) : 3;
  let hash = length;
  for (let i = length - 1; i >= 0; i -= stride) hash = Math.imul(hash ^ prompt.charCodeAt(i), 0x9e3779b1);
  return ((hash ^ (hash >>> 15)) & (INDEX_SETS - 1)) << 1;
}

/**
 * The number of the prompt's term list in the current epoch (remembered for recent
 * prompts: rendered prompts of one protocol repeat often, and tokenising is the costliest
 * part of aggregating a record); −1 for a prompt too long to remember, whose list is
 * `extractTerms(prompt)`, made anew each time.
 */
export function termsNumberOf(prompt: string): number {
  if (prompt.length > CACHEABLE_LENGTH) return -1;
  // Not a string (a malformed record): the cache alone, as ever.
  const first = typeof prompt === "string" ? setOf(prompt) : -1;
  if (first >= 0) {
    if (indexPrompts[first] === prompt) return indexNumbers[first]!;
    if (indexPrompts[first + 1] === prompt) return indexNumbers[first + 1]!;
  }
  let number = cache.get(prompt);
  if (number === undefined) {
    const terms = extractTerms(prompt);
    if (cache.size >= CACHE_LIMIT) {
      cache.clear();
      indexPrompts.fill(undefined);
      numbered = [];
      epoch += 1;
    }
    number = numbered.length;
    numbered.push(terms);
    cache.set(prompt, number);
  }
  if (first < 0) return number;
  // The newest first, the one it replaces second, the second forgotten.
  indexPrompts[first + 1] = indexPrompts[first];
  indexNumbers[first + 1] = indexNumbers[first]!;
  indexPrompts[first] = prompt;
  indexNumbers[first] = number;
  return number;
}

/** `extractTerms` remembered for recent prompts: the list `termsNumberOf` numbers. */
export function termsOf(prompt: string): readonly string[] {
  const number = termsNumberOf(prompt);
  return number < 0 ? extractTerms(prompt) : numbered[number]!;
}
