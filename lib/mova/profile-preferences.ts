/**
 * The specification's profile preferences that shape a model's answers: `language` and
 * `tone` (from `preferences`, or the profile's own `language`) join the system message of
 * every prompt step, so that a profile written for MOVA 2.x is honoured without each prompt
 * repeating it.
 */
import { type Resolver, stringifyValue } from "./placeholders.ts";

/** The system message lines for the run's profile, or undefined when it states no preference. */
export function profilePreferenceLines(resolve: Resolver): string | undefined {
  const text = (value: unknown): string | undefined => {
    if (value === undefined || value === null) return undefined;
    const shown = stringifyValue(value).trim();
    return shown === "" ? undefined : shown;
  };
  const language = text(resolve("profile.preferences.language")) ?? text(resolve("profile.language"));
  const tone = text(resolve("profile.preferences.tone"));
  const lines: string[] = [];
  if (language) lines.push(`Answer in this language: ${language}.`);
  if (tone) lines.push(`Use this tone: ${tone}.`);
  return lines.length > 0 ? lines.join("\n") : undefined;
}
