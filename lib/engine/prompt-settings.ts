/**
 * A prompt step's model settings: its preset's (MOVA 2.2 SDK `presets`) with the step's own
 * fields over them, and the system message in any of its three spellings.
 */
import { MovaError } from "../errors.ts";
import { type MovaDocument, type PromptStep, systemMessageOf } from "../mova/schema.ts";

export interface PromptSettings {
  /** The models to try in order; `[undefined]` is the port's default model. */
  models: Array<string | undefined>;
  temperature?: number;
  maxTokens?: number;
  /** The system message template (the step's, else its preset's). */
  system?: string;
}

/** Throws `unknown_preset` when the step names a preset the document does not declare. */
export function promptSettings(document: MovaDocument, step: PromptStep): PromptSettings {
  let preset: MovaDocument["presets"][string] | undefined;
  if (step.preset !== undefined) {
    preset = Object.hasOwn(document.presets, step.preset) ? document.presets[step.preset] : undefined;
    if (!preset) {
      throw new MovaError("unknown_preset", `the preset "${step.preset}" does not exist`);
    }
  }
  const model = step.model ?? preset?.model;
  const settings: PromptSettings = {
    models: model === undefined ? [undefined] : Array.isArray(model) ? [...model] : [model],
  };
  const temperature = step.temperature ?? preset?.temperature;
  if (temperature !== undefined) settings.temperature = temperature;
  const maxTokens = step.max_tokens ?? preset?.max_tokens;
  if (maxTokens !== undefined) settings.maxTokens = maxTokens;
  const system = systemMessageOf(step) ?? (preset ? systemMessageOf(preset) : undefined);
  if (system !== undefined) settings.system = system;
  return settings;
}
