import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { STOP_WORDS, extractTerms, termsOf } from "../../lib/analysis/terms.ts";

/** The definition the scanner implements, written as regular expressions (ʼ is an apostrophe). */
function referenceTerms(text: string): string[] {
  const seen = new Set<string>();
  for (const match of text
    .replace(/ʼ/gu, "’")
    .replace(/\{[^{}\s]*\}/gu, " ")
    .matchAll(/[\p{L}\p{N}]+(?:['’ʼ][\p{L}\p{N}]+)*/gu)) {
    const term = match[0].toLowerCase().replace(/[’ʼ]/gu, "'");
    if (term.length < 2 || term.length > 40) continue;
    if (/^[\p{N}']+$/u.test(term) || STOP_WORDS.has(term)) continue;
    seen.add(term);
  }
  return [...seen];
}

describe("prompt terms", () => {
  it("drops stop words of three languages, numbers, placeholders and one-letter words", () => {
    expect(extractTerms("Please tell {user.name} the ORDER 42 is late, and don't wait! Х")).toEqual([
      "tell",
      "order",
      "late",
      "don't",
      "wait",
    ]);
    expect(extractTerms("Будь ласка, перевірте замовлення №12 для {city} та п’ять позицій і пʼять")).toEqual([
      "ласка",
      "перевірте",
      "замовлення",
      "п'ять",
      "позицій",
    ]);
    expect(extractTerms("Пожалуйста, проверьте заказ и доставку 2026")).toEqual([
      "проверьте",
      "заказ",
      "доставку",
    ]);
    // A brace span with white space is text, not a placeholder.
    expect(extractTerms('Answer as {"city": x} JSON')).toEqual(["answer", "city", "json"]);
  });

  it("matches the regular-expression definition on any text", () => {
    const alphabet = fc.constantFrom(
      ..."aZ9 {}.'’ʼ_-ёЇї€😀𝔸١\n\tß".split(""),
      "{x}",
      "{a.b}",
      "the",
      "Ünïcode",
    );
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 40 }), (parts) => {
        const text = parts.join("");
        expect(extractTerms(text)).toEqual(referenceTerms(text));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 60 }), (text) => {
        expect(extractTerms(text)).toEqual(referenceTerms(text));
      }),
    );
  });

  it("remembers the terms of a prompt it has seen", () => {
    const prompt = "Summarise the delivery status for the customer";
    expect(termsOf(prompt)).toBe(termsOf(`${prompt}`));
    expect(termsOf(prompt)).toEqual(["summarise", "delivery", "status", "customer"]);
  });
});
