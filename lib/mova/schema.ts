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
  // the specification's operators
  "in_range",
  "matches_regex",
] as const;
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number];

/**
 * One rule. The operator is a plain string here so that the validator can report
 * `invalid_operator`. `variable` is a dotted path or an expression (expression.ts). The
 * specification's rules may also name the step they lead to (`next_step_id`) or hold a
 * nested group (`sub_conditions`), which then replaces their own variable/operator/value.
 */
export const Condition = z
  .object({
    variable: z.string().min(1).optional(),
    operator: z.string().min(1).optional(),
    value: JsonValue.optional(),
    next_step_id: z.string().min(1).optional(),
    get sub_conditions() {
      return ConditionGroup.optional();
    },
  })
  .superRefine((rule, context) => {
    if (rule.sub_conditions !== undefined) return;
    for (const field of ["variable", "operator"] as const) {
      if (rule[field] === undefined)
        context.addIssue({ code: "custom", path: [field], message: `\`${field}\` is required` });
    }
  });
export type Condition = z.infer<typeof Condition>;

export const CONDITION_LOGIC = ["AND", "OR", "NOT"] as const;

/**
 * The specification's object form: every rule is evaluated and combined by `logic` (NOT
 * means "not all"); `default_next_step_id` is where the run goes when the combination does
 * not hold. `logic` is read case-insensitively.
 */
export const ConditionGroup = z.object({
  logic: z
    .string()
    .transform((logic) => logic.toUpperCase())
    .pipe(z.enum(CONDITION_LOGIC))
    .default("AND"),
  get rules() {
    return z.array(Condition).min(1);
  },
  default_next_step_id: z.string().min(1).optional(),
});
export type ConditionGroup = z.infer<typeof ConditionGroup>;

/** A step's `conditions`: a list of rules, or a group. */
export const Conditions = z.union([z.array(Condition), ConditionGroup]);
export type Conditions = z.infer<typeof Conditions>;

export const Retry = z.object({
  attempts: z.number().int().min(1).max(20).default(1),
  backoff_ms: z.number().int().min(0).max(60_000).default(200),
});
export type Retry = z.infer<typeof Retry>;

const stepBase = {
  id: z.string().min(1),
  description: z.string().optional(),
  next_step: z.string().min(1).optional(),
  /**
   * The specification's name for `next_step`, accepted in both forms. The validator renames
   * it (classes.ts), so the model a run sees has `next_step` only; it is listed here for the
   * JSON Schema of editors.
   */
  next_step_id: z.string().min(1).optional(),
  /** A guard: when the conditions do not hold, the step is skipped. */
  conditions: Conditions.optional(),
  /** The step to go to when this step fails after its retries (instead of failing the run). */
  on_error: z.string().min(1).optional(),
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
  conditions: z.union([z.array(Condition).min(1), ConditionGroup]),
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

/** An event's name: what `POST /executions/{id}/events/{name}` and `{callback.NAME}` deliver. */
export const EVENT_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** The longest `wait` or `wait_event` timeout: a year (a run's deadline bounds it anyway). */
export const MAX_WAIT_SECONDS = 31_536_000;

/** extension: pause for `seconds`, or `until` a time (an ISO 8601 template); exactly one of them. */
export const WaitStep = z.object({
  ...stepBase,
  action: z.literal("wait"),
  seconds: z.number().min(0).max(MAX_WAIT_SECONDS).optional(),
  until: z.string().min(1).optional(),
});
export type WaitStep = z.infer<typeof WaitStep>;

/** extension: pause until the event `event` is delivered; its JSON payload goes to `output`. */
export const WaitEventStep = z.object({
  ...stepBase,
  action: z.literal("wait_event"),
  event: z.string().regex(EVENT_NAME, "an event name is 1 to 64 letters, digits, _ or -"),
  timeout_seconds: z.number().int().min(1).max(MAX_WAIT_SECONDS).optional(),
  on_timeout: z.string().min(1).optional(),
  output: z.string().min(1).optional(),
});
export type WaitEventStep = z.infer<typeof WaitEventStep>;

/** The deepest chain of `call` / `foreach` children a run may open (a protocol calling itself stops there). */
export const MAX_CALL_DEPTH = 8;
/** The most children of one `foreach` step running at once, and its default. */
export const MAX_FOREACH_CONCURRENCY = 50;
export const DEFAULT_FOREACH_CONCURRENCY = 4;
/** The most items one `foreach` step runs (a longer list fails the step with `too_many_items`). */
export const MAX_FOREACH_ITEMS = 1000;

/** extension: run another protocol of the document as a child; its final output goes to `output`. */
export const CallStep = z.object({
  ...stepBase,
  action: z.literal("call"),
  protocol: z.string().min(1),
  /** The child's variables: each value a template (one placeholder alone keeps its type). */
  input: z.record(z.string().min(1), JsonValue).optional(),
  output: z.string().min(1).optional(),
});
export type CallStep = z.infer<typeof CallStep>;

/** extension: run `protocol` once per item of the list `items` names, outputs kept in the items' order. */
export const ForeachStep = z.object({
  ...stepBase,
  action: z.literal("foreach"),
  /** A placeholder naming a list, e.g. `{orders}`. */
  items: z.string().min(1),
  protocol: z.string().min(1),
  /** The child's variable holding its item (default `item`); `index` holds its position. */
  as: z.string().min(1).optional(),
  /** More variables of each child, as `call`'s `input`. */
  input: z.record(z.string().min(1), JsonValue).optional(),
  concurrency: z.number().int().min(1).max(MAX_FOREACH_CONCURRENCY).optional(),
  output: z.string().min(1).optional(),
});
export type ForeachStep = z.infer<typeof ForeachStep>;

export const STEP_ACTIONS = [
  "prompt",
  "input",
  "tool_api",
  "condition",
  "parallel",
  "end",
  "wait",
  "wait_event",
  "call",
  "foreach",
] as const;
export type StepAction = (typeof STEP_ACTIONS)[number];

export const Step = z.discriminatedUnion("action", [
  PromptStep,
  InputStep,
  ToolApiStep,
  ConditionStep,
  ParallelStep,
  EndStep,
  WaitStep,
  WaitEventStep,
  CallStep,
  ForeachStep,
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
  wait: WaitStep,
  wait_event: WaitEventStep,
  call: CallStep,
  foreach: ForeachStep,
} as const;

/**
 * The specification's protocol-wide defaults for `prompt` and `tool_api` steps that set
 * nothing themselves: `1 + retry_count` attempts, then `fallback_step_id` (as `on_error`).
 * The validator writes them onto those steps (error-handling.ts).
 */
export const ErrorHandling = z.object({
  retry_count: z.number().int().min(0).max(19).optional(),
  fallback_step_id: z.string().min(1).optional(),
});
export type ErrorHandling = z.infer<typeof ErrorHandling>;

/**
 * How the run goes on after a step without `next_step`: `sequential` (the sections form) to
 * the next step of the list; `explicit` (the specification's classes form) nowhere: the run
 * ends, completed.
 */
export const FLOW_KINDS = ["sequential", "explicit"] as const;
export type FlowKind = (typeof FLOW_KINDS)[number];

export const Protocol = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  start: z.string().min(1).optional(),
  /** Absent means `sequential`. */
  flow: z.enum(FLOW_KINDS).optional(),
  error_handling: ErrorHandling.optional(),
  /** extension: variables the caller is expected to supply (help the placeholder check). */
  inputs: z.array(z.string().min(1)).optional(),
  /** extension: the step budget of one run. */
  max_steps: z.number().int().min(1).max(100_000).default(200),
  /** extension: the run's deadline, from its start. */
  deadline_ms: z.number().int().min(1).optional(),
  /** extension: conditions on the final variables that say whether a completed run achieved its purpose. */
  success: z.array(Condition).min(1).optional(),
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
  /** While a session's run waits for input, a message matching this intent cancels that run and starts `protocol`. */
  interrupts: z.boolean().optional(),
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
  /**
   * The specification's mapping of the parsed response onto variables:
   * `{ "session.data.available": "response.available" }` (response-mapping.ts).
   */
  response_mapping: z.record(z.string().min(1), z.string().min(1)).optional(),
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

/** extension: an LLM judge of completed runs, run by the analysis on a stable sample. */
export const Evaluator = z.object({
  id: z.string().min(1).max(64),
  /** The protocols judged; all when absent. */
  protocols: z.array(z.string().min(1)).optional(),
  rubric: z.string().min(1).max(4000),
  model: z.string().min(1).optional(),
  /** The share of completed runs judged, chosen by the execution id. */
  sample: z.number().min(0).max(1).default(1),
});
export type Evaluator = z.infer<typeof Evaluator>;
/**
 * The specification's `session` class: the session data a run starts with (readable as
 * `{session.data.KEY}`) and the session's lifetime in seconds.
 */
export const SessionDefaults = z.object({
  data: z.record(z.string(), JsonValue).default({}),
  ttl: z.number().int().min(1).optional(),
});
export type SessionDefaults = z.infer<typeof SessionDefaults>;

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
  evaluators: z.array(Evaluator).default([]),
  /** From the classes form's `session` class (or written so in the sections form). */
  session: SessionDefaults.optional(),
  /** MOVA 2.2 SDK: named model settings for prompt steps. */
  presets: z.record(z.string().min(1), Preset).default({}),
});
export type MovaDocument = z.infer<typeof MovaDocument>;
/** A document as written, before defaults are filled in. */
export type MovaDocumentInput = z.input<typeof MovaDocument>;

export const TOP_LEVEL_KEYS = Object.keys(MovaDocument.shape);
