/**
 * The MOVA document model: zod schemas for every section and step, with the TypeScript
 * types inferred from them. Parsing with these schemas normalises a document (defaults
 * filled in, unknown fields dropped); the validator reports what the schemas alone cannot
 * (references, graph checks, placeholders) and warns about the unknown fields.
 */
import * as z from "zod";

/** Any JSON value. */
type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
const JsonValue: z.ZodType<Json> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(JsonValue),
    z.record(z.string(), JsonValue),
  ]),
);

export const CONDITION_OPERATORS = [
  "equals",
  "not_equals",
  "contains",
  "greater_than",
  "less_than",
  // extensions
  "not_contains",
  "greater_or_equal",
  "less_or_equal",
  "exists",
  "not_exists",
  "in",
  "matches",
] as const;
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number];

/** The operator is a plain string here so that the validator can report `invalid_operator`. */
export const Condition = z.object({
  variable: z.string().min(1),
  operator: z.string().min(1),
  value: JsonValue.optional(),
});
export type Condition = z.infer<typeof Condition>;

export const Retry = z.object({
  attempts: z.number().int().min(1).max(20).default(1),
  backoff_ms: z.number().int().min(0).max(60_000).default(200),
});
export type Retry = z.infer<typeof Retry>;

const stepBase = {
  id: z.string().min(1),
  description: z.string().optional(),
  next_step: z.string().min(1).optional(),
  /** A guard: when the conditions do not all hold, the step is skipped. */
  conditions: z.array(Condition).optional(),
};

const callable = {
  retry: Retry.optional(),
  timeout_ms: z.number().int().min(1).max(900_000).optional(),
};

/**
 * A model, or *extension* a list of models tried in order when one fails with a failure
 * worth retrying or is unknown to the provider (model fallback).
 */
export const ModelChoice = z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(10)]);
export type ModelChoice = z.infer<typeof ModelChoice>;

/**
 * The system message: `system`, or the MOVA 2.2 SDK's spellings `system_message` and
 * `system_prompt` (the first present wins, in that order).
 */
const systemSpellings = {
  system: z.string().optional(),
  system_message: z.string().optional(),
  system_prompt: z.string().optional(),
};

/** A named bundle of model settings (MOVA 2.2 SDK `presets`) that a prompt step picks with `preset`. */
export const Preset = z.object({
  /** The MOVA 2.2 SDK repeats the preset's key here. */
  name: z.string().optional(),
  description: z.string().optional(),
  model: ModelChoice.optional(),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().min(1).optional(),
  ...systemSpellings,
});
export type Preset = z.infer<typeof Preset>;

/** The system message of a step or preset, whichever of its three spellings it uses. */
export function systemMessageOf(holder: {
  system?: string | undefined;
  system_message?: string | undefined;
  system_prompt?: string | undefined;
}): string | undefined {
  return holder.system ?? holder.system_message ?? holder.system_prompt;
}

export const PromptStep = z.object({
  ...stepBase,
  ...callable,
  action: z.literal("prompt"),
  prompt: z.string(),
  ...systemSpellings,
  instructions: z.array(z.string()).optional(),
  /** A preset of the document's `presets`; the step's own settings win over it. */
  preset: z.string().min(1).optional(),
  model: ModelChoice.optional(),
  /**
   * extension: a JSON Schema the answer must match (structured output); the step's output is
   * then the parsed object.
   */
  response_schema: z.record(z.string(), JsonValue).optional(),
  /** MOVA 2.2 SDK: ids of document tools the model may call (function calling). */
  tools: z.array(z.string().min(1)).max(64).optional(),
  /** MOVA 2.2 SDK: send tool results back to the model until it answers (default true). */
  continue_after_tools: z.boolean().optional(),
  /** extension: tool rounds before the step fails with `tool_rounds_exceeded` (default 5). */
  max_tool_rounds: z.number().int().min(1).max(50).optional(),
  /** MOVA 2.2 SDK: the last N turns of the session's conversation sent before the prompt (over the protocol's `memory`). */
  history: z.number().int().min(0).max(100).optional(),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().min(1).optional(),
  output: z.string().min(1).optional(),
});
export type PromptStep = z.infer<typeof PromptStep>;

export const INPUT_TYPES = ["number", "integer", "email", "date", "boolean"] as const;

/** extension: what a reply to an `input` step must be; a refused reply is asked for again. */
export const InputValidation = z.object({
  type: z.enum(INPUT_TYPES).optional(),
  pattern: z.string().max(1000).optional(),
  min_length: z.number().int().min(0).optional(),
  max_length: z.number().int().min(1).optional(),
  /** Conditions on the reply, read as the step's variable (and `user_input`). */
  conditions: z.array(Condition).optional(),
  /** Shown when a reply is refused (a template). */
  message: z.string().optional(),
  /** Replies in all before the form gives up (default 3). */
  max_attempts: z.number().int().min(1).max(100).optional(),
  /** The step to go to when the attempts run out (default: the run fails with `input_attempts_exhausted`). */
  on_exhausted: z.string().min(1).optional(),
});
export type InputValidation = z.infer<typeof InputValidation>;

export const InputStep = z.object({
  ...stepBase,
  action: z.literal("input"),
  prompt: z.string(),
  variable: z.string().min(1),
  validate: InputValidation.optional(),
});
export type InputStep = z.infer<typeof InputStep>;

export const ToolApiStep = z.object({
  ...stepBase,
  ...callable,
  action: z.literal("tool_api"),
  tool_api_id: z.string().min(1),
  output: z.string().min(1).optional(),
});
export type ToolApiStep = z.infer<typeof ToolApiStep>;

export const ConditionStep = z.object({
  ...stepBase,
  action: z.literal("condition"),
  conditions: z.array(Condition).min(1),
  else_step: z.string().min(1).optional(),
});
export type ConditionStep = z.infer<typeof ConditionStep>;

export const ParallelStep = z.object({
  ...stepBase,
  action: z.literal("parallel"),
  steps: z.array(z.string().min(1)).min(1),
});
export type ParallelStep = z.infer<typeof ParallelStep>;

export const EndStep = z.object({
  ...stepBase,
  action: z.literal("end"),
  response_template: z.string().optional(),
});
export type EndStep = z.infer<typeof EndStep>;

export const STEP_ACTIONS = ["prompt", "input", "tool_api", "condition", "parallel", "end"] as const;
export type StepAction = (typeof STEP_ACTIONS)[number];

export const Step = z.discriminatedUnion("action", [
  PromptStep,
  InputStep,
  ToolApiStep,
  ConditionStep,
  ParallelStep,
  EndStep,
]);
export type Step = z.infer<typeof Step>;

/** The schema of each action, for the validator's unknown-field check. */
export const STEP_SCHEMAS = {
  prompt: PromptStep,
  input: InputStep,
  tool_api: ToolApiStep,
  condition: ConditionStep,
  parallel: ParallelStep,
  end: EndStep,
} as const;

export const Protocol = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  start: z.string().min(1).optional(),
  /** extension: variables the caller is expected to supply (help the placeholder check). */
  inputs: z.array(z.string().min(1)).optional(),
  /** extension: the step budget of one run. */
  max_steps: z.number().int().min(1).max(100_000).default(200),
  /** extension: the run's deadline, from its start. */
  deadline_ms: z.number().int().min(1).optional(),
  /** MOVA 2.2 SDK: the turns of the session's conversation each prompt step sees (default 0). */
  memory: z.object({ turns: z.number().int().min(0).max(100) }).optional(),
  steps: z.array(Step).min(1),
});
export type Protocol = z.infer<typeof Protocol>;

const INTENT_TYPES = ["greeting", "question", "command", "feedback", "custom"] as const;

export const Intent = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  patterns: z.array(z.string().min(1)).min(1),
  priority: z.number().int().default(0),
  intent_type: z.enum(INTENT_TYPES).default("custom"),
  response_template: z.string().optional(),
  protocol: z.string().min(1).optional(),
});
export type Intent = z.infer<typeof Intent>;

const AUTH_TYPES = ["none", "bearer", "api_key", "basic"] as const;

export const Authentication = z.object({
  type: z.enum(AUTH_TYPES).default("none"),
  token: z.string().optional(),
  header: z.string().optional(),
  key: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
});
export type Authentication = z.infer<typeof Authentication>;

export const HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The method is a plain string here so that the validator can report `invalid_method`. */
export const Tool = z.object({
  id: z.string().min(1),
  name: z.string().optional(),
  description: z.string().optional(),
  endpoint: z.string().min(1),
  method: z.string().min(1).default("GET"),
  headers: z.record(z.string(), z.string()).default({}),
  parameters: z.record(z.string(), JsonValue).default({}),
  authentication: Authentication.default({ type: "none" }),
  /** extension: defaults for steps calling this tool. */
  timeout_ms: z.number().int().min(1).max(900_000).optional(),
  retry: Retry.optional(),
});
export type Tool = z.infer<typeof Tool>;

export const Instruction = z.object({
  id: z.string().min(1),
  title: z.string(),
  content: z.string(),
  category: z.string().optional(),
  tags: z.array(z.string()).optional(),
});
export type Instruction = z.infer<typeof Instruction>;

export const Profile = z.object({
  user_id: z.string().min(1),
  name: z.string().optional(),
  preferences: z.record(z.string(), JsonValue).optional(),
  language: z.string().optional(),
  timezone: z.string().optional(),
});
export type Profile = z.infer<typeof Profile>;

export const Contract = z.object({
  contract_id: z.string().min(1),
  parties: z.array(z.string()),
  terms: JsonValue,
  conditions: JsonValue.optional(),
  valid_from: z.string(),
  valid_until: z.string().optional(),
});
export type Contract = z.infer<typeof Contract>;

export const MovaDocument = z.object({
  /** YAML reads `version: 2.2` as a number; both spellings mean the same version. */
  version: z.union([
    z.string().min(1),
    z.number().transform((n) => (Number.isInteger(n) ? n.toFixed(1) : String(n))),
  ]),
  intents: z.array(Intent).default([]),
  protocols: z.array(Protocol).default([]),
  tools: z.array(Tool).default([]),
  instructions: z.array(Instruction).default([]),
  profiles: z.array(Profile).default([]),
  contracts: z.array(Contract).default([]),
  /** MOVA 2.2 SDK: named model settings for prompt steps. */
  presets: z.record(z.string().min(1), Preset).default({}),
});
export type MovaDocument = z.infer<typeof MovaDocument>;
/** A document as written, before defaults are filled in. */
export type MovaDocumentInput = z.input<typeof MovaDocument>;

export const TOP_LEVEL_KEYS = Object.keys(MovaDocument.shape);
