/**
 * A form's check of a reply to an `input` step (`validate`): its type, pattern, length and
 * conditions. A reply that passes is stored typed (a number, a boolean) where the type says so.
 */
import { evaluateConditions } from "../mova/conditions.ts";
import { testPattern } from "../mova/regex.ts";
import type { Resolver } from "../mova/placeholders.ts";
import type { InputValidation } from "../mova/schema.ts";

export type CheckedReply = { ok: true; value: unknown } | { ok: false; reason: string };

const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TRUE_WORDS = new Set(["true", "yes", "y", "1", "так", "да"]);
const FALSE_WORDS = new Set(["false", "no", "n", "0", "ні", "нет"]);

export function checkReply(
  reply: string,
  rules: InputValidation,
  variable: string,
  resolve: Resolver,
): CheckedReply {
  const text = reply.trim();
  let value: unknown = reply;
  switch (rules.type) {
    case "number": {
      const n = text === "" ? Number.NaN : Number(text);
      if (!Number.isFinite(n)) return { ok: false, reason: "not a number" };
      value = n;
      break;
    }
    case "integer":
      if (!/^[-+]?\d{1,15}$/.test(text)) return { ok: false, reason: "not a whole number" };
      value = Number(text);
      break;
    case "email":
      if (text.length > 254 || !EMAIL.test(text)) return { ok: false, reason: "not an email address" };
      value = text;
      break;
    case "date": {
      const match = DATE.exec(text);
      const date = match ? new Date(`${text}T00:00:00Z`) : undefined;
      if (!date || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== text) {
        return { ok: false, reason: "not a date (YYYY-MM-DD)" };
      }
      value = text;
      break;
    }
    case "boolean": {
      const word = text.toLowerCase();
      if (TRUE_WORDS.has(word)) value = true;
      else if (FALSE_WORDS.has(word)) value = false;
      else return { ok: false, reason: "not yes or no" };
      break;
    }
    default:
      break;
  }
  const length = [...reply].length;
  if (rules.min_length !== undefined && length < rules.min_length) return { ok: false, reason: "too short" };
  if (rules.max_length !== undefined && length > rules.max_length) return { ok: false, reason: "too long" };
  if (rules.pattern !== undefined) {
    // Linear time whatever the pattern (RE2); an unusable pattern accepts nothing.
    if (!testPattern(rules.pattern, reply)) {
      return { ok: false, reason: "not in the expected form" };
    }
  }
  if (rules.conditions && rules.conditions.length > 0) {
    const withReply: Resolver = (path) => {
      if (path === variable || path === "user_input") return value;
      if (path.startsWith(`${variable}.`)) return undefined;
      return resolve(path);
    };
    if (!evaluateConditions(rules.conditions, withReply))
      return { ok: false, reason: "does not meet the conditions" };
  }
  return { ok: true, value };
}
