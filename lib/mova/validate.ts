/**
 * The MOVA validator: the schemas (shape and types) plus what they cannot see: versions,
 * duplicate ids, references, operators, placeholders, tool methods and endpoints, and the
 * flow graph of each protocol. It never throws: whatever it is given, it answers with a
 * result. Checks run on the raw input where they can, so one broken section does not hide
 * the problems of another.
 */
import { MovaError } from "../errors.ts";
import type { z } from "zod";
import { isConditionOperator } from "./conditions.ts";
import { type DocumentForm, normaliseForm, writtenPath } from "./classes.ts";
import { applyErrorHandling } from "./error-handling.ts";
import { compileOperand, operandPaths } from "./expression.ts";
import { patternProblem } from "./regex.ts";
import { type SourceFormat, parseSource } from "./parse.ts";
import { parseTemplate } from "./placeholders.ts";
import { secretPlacementIssues } from "./secret-placement.ts";
import {
  Authentication,
  CONDITION_OPERATORS,
  Condition,
  ConditionGroup,
  Contract,
  Evaluator,
  HTTP_METHODS,
  Instruction,
  Intent,
  MovaDocument,
  Preset,
  Profile,
  Protocol,
  Retry,
  STEP_ACTIONS,
  SessionDefaults,
  STEP_SCHEMAS,
  type StepAction,
  TOP_LEVEL_KEYS,
  Tool,
} from "./schema.ts";
import { defaultOutputVariable, isBuiltinPath } from "./steps.ts";
import { compileSchema } from "./response-schema.ts";
import { toolFunction } from "./tool-functions.ts";

type ValidationCode =
  | "schema"
  | "unsupported_version"
  | "duplicate_id"
  | "unknown_reference"
  | "invalid_operator"
  | "invalid_placeholder"
  | "invalid_method"
  | "invalid_endpoint"
  | "no_exit"
  | "unreachable_step"
  | "unresolvable_placeholder"
  | "missing_else"
  | "unknown_field"
  | "invalid_expression"
  | "secret_not_allowed_here"
  | "unknown_preset"
  | "invalid_schema"
  | "tool_without_description"
  | "missing_input";

export interface ValidationIssue {
  code: ValidationCode;
  /** A JSON path into the document as written, e.g. `$.protocols[0].steps[2].next_step`. */
  path: string;
  message: string;
}

export interface ValidationResult {
  valid: boolean;
  errors: ValidationIssue[];
  warnings: ValidationIssue[];
  /** The normalised document (defaults filled in, unknown fields dropped), when valid. */
  document?: MovaDocument;
  /** The form the document was written in: `sections`, or the specification's `classes`. */
  form: DocumentForm;
}

export class InvalidDocumentError extends MovaError {
  readonly errors: ValidationIssue[];
  readonly warnings: ValidationIssue[];
  constructor(errors: ValidationIssue[], warnings: ValidationIssue[] = []) {
    const shown = errors.slice(0, 5).map(formatIssue).join("; ");
    const more = errors.length > 5 ? `; and ${errors.length - 5} more` : "";
    super(
      "invalid_document",
      `invalid MOVA document (${errors.length} error${errors.length === 1 ? "" : "s"}): ${shown}${more}`,
      { details: { errors, warnings } },
    );
    this.errors = errors;
    this.warnings = warnings;
  }
}

/** One line for people: `$.path: message [code]`. */
function formatIssue(issue: ValidationIssue): string {
  return `${issue.path}: ${issue.message} [${issue.code}]`;
}

/**
 * Parses and validates source text. Throws DocumentParseError (code `parse_error`) when
 * the text is not JSON/YAML, InvalidDocumentError (code `invalid_document`) when the
 * document has errors; warnings come back with the document.
 */
export function loadDocument(
  text: string,
  format?: SourceFormat,
): { document: MovaDocument; warnings: ValidationIssue[] } {
  const result = validateDocument(parseSource(text, format));
  if (!result.valid || !result.document) throw new InvalidDocumentError(result.errors, result.warnings);
  return { document: result.document, warnings: result.warnings };
}

/** Deeper input is refused before any recursive check can exhaust the stack. */
export const MAX_DOCUMENT_DEPTH = 64;
/** Objects, lists and values in all; also bounds shared (DAG) structures. */
const MAX_DOCUMENT_NODES = 500_000;

/** Validates a parsed document. Never throws. */
export function validateDocument(input: unknown): ValidationResult {
  let form: DocumentForm = "sections";
  try {
    const normalised = normaliseForm(input);
    form = normalised.form;
    const result = new Validator(normalised.document).run();
    const at = (issue: ValidationIssue): ValidationIssue => ({
      ...issue,
      path: writtenPath(normalised.paths, issue.path),
    });
    const errors = [...normalised.errors, ...result.errors.map(at)];
    const warnings = [...normalised.warnings, ...result.warnings.map(at)];
    if (errors.length > 0) return { valid: false, errors, warnings, form };
    return { ...result, errors, warnings, form };
  } catch (error) {
    return {
      valid: false,
      errors: [
        { code: "schema", path: "$", message: `the document could not be validated: ${describe(error)}` },
      ],
      warnings: [],
      form,
    };
  }
}

function describe(error: unknown): string {
  try {
    if (error instanceof RangeError) return "it is nested too deeply";
    return error instanceof Error ? error.message : String(error);
  } catch {
    return "unreadable value";
  }
}

type Raw = Record<string, unknown>;

function isObject(value: unknown): value is Raw {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Reads an own property only, so `constructor` or `toString` never come from a prototype. */
function own(value: unknown, key: string): unknown {
  return isObject(value) && Object.hasOwn(value, key) ? value[key] : undefined;
}

function ownString(value: unknown, key: string): string | undefined {
  const found = own(value, key);
  return typeof found === "string" ? found : undefined;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function joinPath(base: string, segment: string | number): string {
  if (typeof segment === "number") return `${base}[${segment}]`;
  return IDENTIFIER.test(segment) ? `${base}.${segment}` : `${base}[${JSON.stringify(segment)}]`;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function quote(value: string): string {
  return `\`${value}\``;
}

type ZodIssue = z.ZodError["issues"][number];

function describeZodIssue(issue: ZodIssue): string {
  const field = issue.path.length ? quote(issue.path.map(String).join(".")) : "the value";
  if (issue.code === "invalid_type" && / received undefined$/.test(issue.message))
    return `${field} is required`;
  const message = issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  return `${field}: ${message}`;
}

const ProtocolShell = Protocol.omit({ steps: true });
const PARALLEL_BRANCH_ACTIONS = new Set<string>(["prompt", "tool_api"]);
const SECTION_KEYS = [
  "intents",
  "protocols",
  "tools",
  "instructions",
  "profiles",
  "contracts",
  "evaluators",
] as const;

interface StepInfo {
  index: number;
  raw: Raw;
  path: string;
  id: string | undefined;
  action: StepAction | undefined;
  label: string;
}

interface ProtocolInfo {
  index: number;
  raw: Raw;
  path: string;
  name: string | undefined;
  label: string;
  steps: StepInfo[];
  /** The first step with each id (a duplicate id is reported, not indexed). */
  stepIndex: Map<string, StepInfo>;
  /** Variables the protocol's inputs and steps can set. */
  variables: Set<string>;
}

/** The edge target meaning "the run ends here". */
const EXIT = -1;
/** An edge to a step that does not exist (reported as unknown_reference). */
const DANGLING = -2;

class Validator {
  private readonly errors: ValidationIssue[] = [];
  private readonly warnings: ValidationIssue[] = [];
  private readonly seenWarnings = new Set<string>();
  private protocols: ProtocolInfo[] = [];
  /** The keys a document's `session` class gives a run (undefined: it declares none). */
  private sessionKeys: Set<string> | undefined;

  constructor(private readonly input: unknown) {}

  private checkSession(input: Raw): void {
    const session = own(input, "session");
    if (session === undefined) return;
    const parsed = SessionDefaults.safeParse(session);
    if (!parsed.success) this.zodIssues(parsed.error, "$.session", "session");
    this.unknownFields(session, Object.keys(SessionDefaults.shape), "$.session", "session");
    const data = own(session, "data");
    this.sessionKeys = new Set(isObject(data) ? Object.keys(data) : []);
  }

  /**
   * A tool's `response_mapping` sets variables (and session data keys) in every protocol
   * that calls the tool; the session keys it writes are known keys of the session.
   */
  private noteMappedVariables(tools: unknown[]): void {
    tools.forEach((tool) => {
      const mapping = own(tool, "response_mapping");
      const id = ownString(tool, "id");
      if (!isObject(mapping) || id === undefined) return;
      for (const target of Object.keys(mapping)) {
        const sessionKey = sessionKeyOf(target);
        if (sessionKey !== undefined) {
          this.sessionKeys?.add(sessionKey);
          continue;
        }
        const first = target.split(".")[0] ?? target;
        for (const protocol of this.protocols) {
          if (
            protocol.steps.some(
              (step) => step.action === "tool_api" && ownString(step.raw, "tool_api_id") === id,
            )
          )
            protocol.variables.add(first);
        }
      }
    });
  }

  private error(code: ValidationCode, path: string, message: string): void {
    this.errors.push({ code, path, message });
  }

  private warn(code: ValidationCode, path: string, message: string): void {
    const key = `${code}\u0000${path}\u0000${message}`;
    if (this.seenWarnings.has(key)) return;
    this.seenWarnings.add(key);
    this.warnings.push({ code, path, message });
  }

  private zodIssues(error: z.ZodError, base: string, context: string): void {
    for (const issue of error.issues) {
      let path = base;
      for (const segment of issue.path)
        path = joinPath(path, typeof segment === "number" ? segment : String(segment));
      this.error("schema", path, `${context}: ${describeZodIssue(issue)}`);
    }
  }

  /**
   * A step's schema issues; `conditions` are a list or a group, and zod's answer for such a
   * union ("invalid input") is replaced by the issues of the form the document wrote.
   */
  private stepIssues(error: z.ZodError, raw: Raw, path: string, label: string): void {
    const isUnion = (issue: ZodIssue) =>
      issue.code === "invalid_union" && issue.path.length === 1 && issue.path[0] === "conditions";
    const rest = error.issues.filter((issue) => !isUnion(issue));
    if (rest.length > 0) this.zodIssues({ issues: rest } as z.ZodError, path, label);
    if (rest.length === error.issues.length) return;
    const conditions = own(raw, "conditions");
    const form = Array.isArray(conditions)
      ? Condition.array().min(1).safeParse(conditions)
      : isObject(conditions)
        ? ConditionGroup.safeParse(conditions)
        : undefined;
    if (form && !form.success) this.zodIssues(form.error, `${path}.conditions`, label);
    else if (!form)
      this.error(
        "schema",
        `${path}.conditions`,
        `${label}: \`conditions\` must be a list of rules or a group { logic, rules, default_next_step_id }, not ${typeName(conditions)}`,
      );
  }

  run(): Omit<ValidationResult, "form"> {
    const input = this.input;
    if (!isObject(input)) {
      this.error("schema", "$", `a MOVA document must be an object, not ${typeName(input)}`);
      return this.result();
    }
    if (!this.checkStructure(input)) return this.result();
    this.checkVersion(input);
    for (const issue of secretPlacementIssues(input))
      this.error("secret_not_allowed_here", issue.path, issue.message);
    const sections = this.readSections(input);
    this.checkIntents(sections.intents);
    this.checkProtocols(sections.protocols);
    this.checkTools(sections.tools);
    this.checkSimpleSection(sections.instructions, "instructions", Instruction, "instruction", "id");
    this.checkSimpleSection(sections.profiles, "profiles", Profile, "profile", "user_id");
    this.checkSimpleSection(sections.contracts, "contracts", Contract, "contract", "contract_id");
    this.checkSimpleSection(sections.evaluators, "evaluators", Evaluator, "evaluator", "id");
    this.checkSession(input);
    this.noteMappedVariables(sections.tools);
    const presetNames = this.checkPresets(input);
    this.checkStepReferences(sections.tools, sections.instructions);
    this.checkPresetReferences(presetNames);
    this.checkModelTools(sections.tools);
    this.checkInputValidation();
    this.checkIntentReferences(sections.intents);
    this.checkFlows();
    this.checkToolPlaceholders(sections.tools);
    this.checkUnknownFields(input, sections);
    return this.result();
  }

  private result(): Omit<ValidationResult, "form"> {
    if (this.errors.length > 0) return { valid: false, errors: this.errors, warnings: this.warnings };
    const parsed = MovaDocument.safeParse(this.input);
    if (!parsed.success) {
      this.zodIssues(parsed.error, "$", "document");
      return { valid: false, errors: this.errors, warnings: this.warnings };
    }
    const document = applyErrorHandling(parsed.data);
    for (const tool of document.tools) tool.method = tool.method.toUpperCase();
    return { valid: true, errors: this.errors, warnings: this.warnings, document };
  }

  /**
   * Bounds depth and size (cycles included) before anything recursive runs, and refuses
   * `__proto__` keys, which would otherwise reach object prototypes when records are copied.
   */
  private checkStructure(input: Raw): boolean {
    const stack: Array<{ value: unknown; path: string; depth: number }> = [
      { value: input, path: "$", depth: 0 },
    ];
    let nodes = 0;
    let ok = true;
    while (stack.length > 0) {
      const { value, path, depth } = stack.pop()!;
      nodes += 1;
      if (nodes > MAX_DOCUMENT_NODES) {
        this.error("schema", "$", `the document is too large (more than ${MAX_DOCUMENT_NODES} values)`);
        return false;
      }
      if (value === null || typeof value !== "object") continue;
      if (depth >= MAX_DOCUMENT_DEPTH) {
        this.error("schema", path, `the document is nested more than ${MAX_DOCUMENT_DEPTH} levels deep`);
        return false;
      }
      if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i--)
          stack.push({ value: value[i], path: `${path}[${i}]`, depth: depth + 1 });
        continue;
      }
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        const childPath = joinPath(path, key);
        if (key === "__proto__") {
          this.error("schema", childPath, "the key `__proto__` is not allowed");
          ok = false;
          continue;
        }
        stack.push({ value: (value as Raw)[key], path: childPath, depth: depth + 1 });
      }
    }
    return ok;
  }

  private checkVersion(input: Raw): void {
    const version = own(input, "version");
    const hint = 'MOVA documents need version 2.x (e.g. "2.2")';
    if (version === undefined) {
      this.error("unsupported_version", "$.version", `the document has no \`version\`; ${hint}`);
      return;
    }
    if (typeof version === "number") {
      if (!Number.isFinite(version) || Math.trunc(version) !== 2) {
        this.error("unsupported_version", "$.version", `version ${version} is not supported; ${hint}`);
      }
      return;
    }
    if (typeof version !== "string") {
      this.error(
        "schema",
        "$.version",
        `\`version\` must be a string such as "2.2", not ${typeName(version)}`,
      );
      return;
    }
    const major = /^\s*v?(\d+)(?:\.\d+){0,2}\s*$/.exec(version)?.[1];
    if (major === undefined) {
      this.error("unsupported_version", "$.version", `${JSON.stringify(version)} is not a version; ${hint}`);
    } else if (Number(major) !== 2) {
      this.error(
        "unsupported_version",
        "$.version",
        `version ${JSON.stringify(version)} is not supported; ${hint}`,
      );
    }
  }

  /** Each section as a list of raw items; a section that is not a list is reported and treated as empty. */
  private readSections(input: Raw): Record<(typeof SECTION_KEYS)[number], unknown[]> {
    const out = {} as Record<(typeof SECTION_KEYS)[number], unknown[]>;
    for (const key of SECTION_KEYS) {
      const value = own(input, key);
      if (value === undefined) out[key] = [];
      else if (Array.isArray(value)) out[key] = value;
      else {
        this.error("schema", `$.${key}`, `\`${key}\` must be a list, not ${typeName(value)}`);
        out[key] = [];
      }
    }
    return out;
  }

  /** Reports items that share an id: the later one points back at the first. */
  private checkDuplicates(
    items: unknown[],
    section: string,
    idKey: string,
    noun: string,
    base = `$.${section}`,
  ) {
    const first = new Map<string, number>();
    items.forEach((item, index) => {
      const id = ownString(item, idKey);
      if (id === undefined) return;
      const earlier = first.get(id);
      if (earlier === undefined) first.set(id, index);
      else {
        this.error(
          "duplicate_id",
          joinPath(`${base}[${index}]`, idKey),
          `${noun} ${idKey} ${quote(id)} is already used by ${base.replace(/^\$\./, "")}[${earlier}]`,
        );
      }
    });
  }

  private label(noun: string, id: string | undefined, index: number): string {
    return id === undefined ? `${noun} #${index}` : `${noun} ${quote(id)}`;
  }

  private checkIntents(intents: unknown[]): void {
    intents.forEach((raw, index) => {
      const path = `$.intents[${index}]`;
      const label = this.label("intent", ownString(raw, "name"), index);
      const parsed = Intent.safeParse(raw);
      if (!parsed.success) this.zodIssues(parsed.error, path, label);
      // An intent that interrupts a waiting run has to start something in its place.
      if (parsed.success && parsed.data.interrupts === true && parsed.data.protocol === undefined) {
        this.error(
          "schema",
          `${path}.protocol`,
          `${label}: an intent with \`interrupts\` needs a \`protocol\``,
        );
      }
      const template = ownString(raw, "response_template");
      if (template !== undefined) {
        this.checkTemplate(template, `${path}.response_template`, label, "response_template", (name) =>
          isBuiltinPath(name)
            ? undefined
            : "intent templates can read only built-ins (user_input, intent, now, session.*, profile.*)",
        );
      }
    });
    this.checkDuplicates(intents, "intents", "name", "intent");
  }

  private checkSimpleSection(
    items: unknown[],
    section: string,
    schema: z.ZodType,
    noun: string,
    idKey: string,
  ): void {
    items.forEach((raw, index) => {
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        this.zodIssues(
          parsed.error,
          `$.${section}[${index}]`,
          this.label(noun, ownString(raw, idKey), index),
        );
      }
    });
    this.checkDuplicates(items, section, idKey, noun);
  }

  private checkProtocols(protocols: unknown[]): void {
    protocols.forEach((raw, index) => {
      const path = `$.protocols[${index}]`;
      const name = ownString(raw, "name");
      const label = this.label("protocol", name, index);
      const info: ProtocolInfo = {
        index,
        raw: isObject(raw) ? raw : {},
        path,
        name,
        label,
        steps: [],
        stepIndex: new Map(),
        variables: new Set(),
      };
      this.protocols.push(info);
      if (!isObject(raw)) {
        this.error("schema", path, `${label} must be an object, not ${typeName(raw)}`);
        return;
      }
      const { steps, ...shell } = raw;
      const parsedShell = ProtocolShell.safeParse(shell);
      if (!parsedShell.success) this.zodIssues(parsedShell.error, path, label);
      const success = own(raw, "success");
      if (Array.isArray(success)) this.checkRules(success, `${path}.success`, label);
      if (steps === undefined) this.error("schema", `${path}.steps`, `${label}: \`steps\` is required`);
      else if (!Array.isArray(steps)) {
        this.error("schema", `${path}.steps`, `${label}: \`steps\` must be a list, not ${typeName(steps)}`);
      } else if (steps.length === 0) this.error("schema", `${path}.steps`, `${label} has no steps`);
      else for (const [stepIndex, step] of steps.entries()) this.checkStep(info, step, stepIndex);
      this.checkDuplicates(
        info.steps.map((s) => s.raw),
        "steps",
        "id",
        `${label}: step`,
        `${path}.steps`,
      );
      for (const step of info.steps)
        if (step.id !== undefined && !info.stepIndex.has(step.id)) info.stepIndex.set(step.id, step);
      const inputs = own(raw, "inputs");
      if (Array.isArray(inputs))
        for (const name of inputs) if (typeof name === "string") info.variables.add(name);
      for (const step of info.steps) {
        if (step.action === undefined) continue;
        const variable = defaultOutputVariable({ ...step.raw, action: step.action, id: step.id ?? "" });
        if (variable) info.variables.add(variable);
      }
    });
    this.checkDuplicates(protocols, "protocols", "name", "protocol");
  }

  private checkStep(protocol: ProtocolInfo, raw: unknown, index: number): void {
    const path = `${protocol.path}.steps[${index}]`;
    const id = ownString(raw, "id");
    const label = `${id === undefined ? `step #${index}` : `step ${quote(id)}`} in ${protocol.label}`;
    const info: StepInfo = { index, raw: isObject(raw) ? raw : {}, path, id, action: undefined, label };
    protocol.steps.push(info);
    if (!isObject(raw)) {
      this.error("schema", path, `${label} must be an object, not ${typeName(raw)}`);
      return;
    }
    const action = own(raw, "action");
    const actions = STEP_ACTIONS.join(", ");
    if (action === undefined) {
      this.error("schema", `${path}.action`, `${label} has no \`action\`; the actions are ${actions}`);
      return;
    }
    if (typeof action !== "string" || !(STEP_ACTIONS as readonly string[]).includes(action)) {
      const shown = typeof action === "string" ? quote(action) : typeName(action);
      this.error("schema", `${path}.action`, `${label}: unknown action ${shown}; the actions are ${actions}`);
      return;
    }
    info.action = action as StepAction;
    const parsed = STEP_SCHEMAS[info.action].safeParse(raw);
    if (!parsed.success) this.stepIssues(parsed.error, raw, path, label);
    this.checkConditions(raw, path, label);
    for (const field of ["prompt", "system", "system_message", "system_prompt", "response_template"]) {
      const template = ownString(raw, field);
      if (template !== undefined) this.checkTemplate(template, joinPath(path, field), label, field);
    }
    const responseSchema = own(raw, "response_schema");
    if (info.action === "prompt" && isObject(responseSchema) && !Array.isArray(responseSchema)) {
      const compiled = compileSchema(responseSchema);
      if ("error" in compiled) {
        this.error(
          "invalid_schema",
          `${path}.response_schema`,
          `${label}: \`response_schema\` is not a usable JSON Schema: ${compiled.error}`,
        );
      }
    }
    if (info.action === "wait") this.checkWait(raw, path, label);
    if (info.action === "condition" && own(raw, "else_step") === undefined && !routesItself(raw)) {
      this.warn(
        "missing_else",
        path,
        `${label}: a condition without \`else_step\` ends the run when it does not hold`,
      );
    }
  }

  /** A `wait` names exactly one of `seconds` and `until` (a template checked like the others). */
  private checkWait(raw: Raw, path: string, label: string): void {
    const hasSeconds = own(raw, "seconds") !== undefined;
    const until = own(raw, "until");
    if (hasSeconds === (until !== undefined)) {
      this.error("schema", path, `${label}: a \`wait\` step takes exactly one of \`seconds\` and \`until\``);
    }
    if (typeof until === "string") this.checkTemplate(until, joinPath(path, "until"), label, "until");
  }

  private checkConditions(step: Raw, path: string, label: string): void {
    const conditions = own(step, "conditions");
    if (Array.isArray(conditions)) this.checkRules(conditions, `${path}.conditions`, label);
    else if (isObject(conditions)) this.checkGroup(conditions, `${path}.conditions`, label);
  }

  private checkGroup(group: Raw, path: string, label: string): void {
    const rules = own(group, "rules");
    if (Array.isArray(rules)) this.checkRules(rules, `${path}.rules`, label);
  }

  private checkRules(rules: unknown[], base: string, label: string): void {
    rules.forEach((condition, index) => {
      const conditionPath = `${base}[${index}]`;
      const nested = own(condition, "sub_conditions");
      if (isObject(nested)) {
        this.checkGroup(nested, `${conditionPath}.sub_conditions`, label);
        return;
      }
      const variable = own(condition, "variable");
      if (typeof variable === "string" && variable !== "") {
        const compiled = compileOperand(variable);
        if (!compiled.ok) {
          this.error(
            "invalid_expression",
            `${conditionPath}.variable`,
            `${label}: ${quote(variable)} is neither a variable path nor a usable expression: ${compiled.error}`,
          );
        }
      }
      const operator = own(condition, "operator");
      if (typeof operator !== "string" || operator === "") return;
      if (!isConditionOperator(operator)) {
        this.error(
          "invalid_operator",
          `${conditionPath}.operator`,
          `${label}: unknown operator ${quote(operator)}; the operators are ${CONDITION_OPERATORS.join(", ")}`,
        );
        return;
      }
      const value = own(condition, "value");
      if (operator === "matches") {
        const problem = patternProblem(value);
        if (problem !== undefined) {
          this.error(
            "invalid_operator",
            `${conditionPath}.value`,
            `${label}: unusable \`matches\` pattern: ${problem}`,
          );
        }
      } else if (operator === "matches_regex") {
        const problem = patternProblem(value);
        if (problem) {
          this.error(
            "invalid_operator",
            `${conditionPath}.value`,
            `${label}: unusable \`matches_regex\` pattern: ${problem}`,
          );
        }
      } else if (operator === "in_range") {
        const numeric = (item: unknown) =>
          typeof item === "number" ||
          (typeof item === "string" && item.trim() !== "" && Number.isFinite(Number(item)));
        if (!Array.isArray(value) || value.length !== 2 || !value.every(numeric)) {
          this.error(
            "invalid_operator",
            `${conditionPath}.value`,
            `${label}: the \`in_range\` operator needs \`[low, high]\`, two numbers, not ${typeName(value)}`,
          );
        }
      } else if (operator === "in" && !Array.isArray(value)) {
        this.error(
          "invalid_operator",
          `${conditionPath}.value`,
          `${label}: the \`in\` operator needs a list value, not ${typeName(value)}`,
        );
      }
    });
  }

  /**
   * Reports malformed placeholders; with `unresolved`, also warns about each placeholder
   * it names (the function returns why the name cannot be provided, or undefined).
   */
  private checkTemplate(
    template: string,
    path: string,
    label: string,
    field: string,
    unresolved?: (name: string) => string | undefined,
  ): void {
    for (const part of parseTemplate(template)) {
      if (part.kind === "invalid") {
        this.error(
          "invalid_placeholder",
          path,
          `${label}: malformed placeholder ${quote(part.raw)} in \`${field}\``,
        );
      } else if (part.kind === "placeholder" && unresolved) {
        const why = unresolved(part.path);
        if (why)
          this.warn(
            "unresolvable_placeholder",
            path,
            `${label}: placeholder ${quote(part.raw)} in \`${field}\`: ${why}`,
          );
      }
    }
  }

  private checkTools(tools: unknown[]): void {
    tools.forEach((raw, index) => {
      const path = `$.tools[${index}]`;
      const label = this.label("tool", ownString(raw, "id"), index);
      const parsed = Tool.safeParse(raw);
      if (!parsed.success) this.zodIssues(parsed.error, path, label);
      if (!isObject(raw)) return;
      const method = own(raw, "method");
      if (
        typeof method === "string" &&
        method !== "" &&
        !(HTTP_METHODS as readonly string[]).includes(method.toUpperCase())
      ) {
        this.error(
          "invalid_method",
          `${path}.method`,
          `${label}: method ${quote(method)} is not one of ${HTTP_METHODS.join(", ")}`,
        );
      }
      const endpoint = own(raw, "endpoint");
      if (typeof endpoint === "string" && endpoint !== "") {
        const problem = endpointProblem(endpoint);
        if (problem)
          this.error(
            "invalid_endpoint",
            `${path}.endpoint`,
            `${label}: endpoint ${quote(endpoint)} ${problem}`,
          );
      }
      for (const { template, path: fieldPath, field } of toolTemplates(raw, path)) {
        this.checkTemplate(template, fieldPath, label, field);
      }
    });
    this.checkDuplicates(tools, "tools", "id", "tool");
  }

  /** `presets`: an object of named model settings; the names it declares (none when it is unusable). */
  private checkPresets(input: Raw): Set<string> {
    const names = new Set<string>();
    const presets = own(input, "presets");
    if (presets === undefined) return names;
    if (!isObject(presets) || Array.isArray(presets)) {
      this.error(
        "schema",
        "$.presets",
        `\`presets\` must be an object of named presets, not ${typeName(presets)}`,
      );
      return names;
    }
    const presetKeys = Object.keys(Preset.shape);
    for (const [name, preset] of Object.entries(presets)) {
      const path = joinPath("$.presets", name);
      const label = `preset ${quote(name)}`;
      names.add(name);
      const parsed = Preset.safeParse(preset);
      if (!parsed.success) this.zodIssues(parsed.error, path, label);
      this.unknownFields(preset, presetKeys, path, label);
      for (const field of ["system", "system_message", "system_prompt"]) {
        const template = ownString(preset, field);
        if (template !== undefined) this.checkTemplate(template, joinPath(path, field), label, field);
      }
    }
    return names;
  }

  /**
   * A prompt step's `tools` must name document tools; a tool offered to the model should say
   * what it does, and its arguments must make a usable JSON Schema.
   */
  private checkModelTools(tools: unknown[]): void {
    const toolIndex = new Map<string, number>();
    tools.forEach((tool, index) => {
      const id = ownString(tool, "id");
      if (id !== undefined && !toolIndex.has(id)) toolIndex.set(id, index);
    });
    const checked = new Set<number>();
    for (const protocol of this.protocols) {
      for (const step of protocol.steps) {
        if (step.action !== "prompt") continue;
        const offered = own(step.raw, "tools");
        if (!Array.isArray(offered)) continue;
        offered.forEach((id, index) => {
          if (typeof id !== "string" || id === "") return;
          const at = toolIndex.get(id);
          if (at === undefined) {
            this.error(
              "unknown_reference",
              `${step.path}.tools[${index}]`,
              `${step.label}: tool ${quote(id)} names no tool`,
            );
            return;
          }
          const tool = tools[at] as Raw;
          if (!ownString(tool, "description")) {
            this.warn(
              "tool_without_description",
              `${step.path}.tools[${index}]`,
              `${step.label}: tool ${quote(id)} is offered to the model without a \`description\` of what it does`,
            );
          }
          if (checked.has(at)) return;
          checked.add(at);
          const parameters = own(tool, "parameters");
          if (parameters !== undefined && (!isObject(parameters) || Array.isArray(parameters))) return;
          const compiled = compileSchema(
            toolFunction({ parameters: (parameters ?? {}) as Record<string, never> }).schema,
          );
          if ("error" in compiled) {
            this.error(
              "invalid_schema",
              `$.tools[${at}].parameters`,
              `tool ${quote(id)}: its parameters are not a usable JSON Schema for the model: ${compiled.error}`,
            );
          }
        });
      }
    }
  }

  /** An input step's `validate`: its `on_exhausted` names a step, its `pattern` compiles. */
  private checkInputValidation(): void {
    for (const protocol of this.protocols) {
      for (const step of protocol.steps) {
        if (step.action !== "input") continue;
        const rules = own(step.raw, "validate");
        if (!isObject(rules)) continue;
        const target = ownString(rules, "on_exhausted");
        if (target !== undefined && target !== "" && !protocol.stepIndex.has(target)) {
          this.error(
            "unknown_reference",
            `${step.path}.validate.on_exhausted`,
            `${step.label}: on_exhausted ${quote(target)} names no step`,
          );
        }
        const pattern = own(rules, "pattern");
        if (typeof pattern === "string") {
          const problem = patternProblem(pattern);
          if (problem !== undefined) {
            this.error(
              "invalid_operator",
              `${step.path}.validate.pattern`,
              `${step.label}: unusable pattern: ${problem}`,
            );
          }
        }
        const message = ownString(rules, "message");
        if (message !== undefined)
          this.checkTemplate(message, `${step.path}.validate.message`, step.label, "validate.message");
      }
    }
  }

  /** A prompt step's `preset` must name one of the document's presets. */
  private checkPresetReferences(presetNames: Set<string>): void {
    for (const protocol of this.protocols) {
      for (const step of protocol.steps) {
        if (step.action !== "prompt") continue;
        const preset = ownString(step.raw, "preset");
        if (preset !== undefined && preset !== "" && !presetNames.has(preset)) {
          const known =
            presetNames.size > 0 ? `; the presets are ${[...presetNames].map(quote).join(", ")}` : "";
          this.error(
            "unknown_preset",
            `${step.path}.preset`,
            `${step.label}: preset ${quote(preset)} names no preset of the document${known}`,
          );
        }
      }
    }
  }

  private checkStepReferences(tools: unknown[], instructions: unknown[]): void {
    const toolIds = new Set(tools.map((tool) => ownString(tool, "id")).filter((id) => id !== undefined));
    const instructionIds = new Set(
      instructions.map((item) => ownString(item, "id")).filter((id) => id !== undefined),
    );
    for (const protocol of this.protocols) {
      const start = ownString(protocol.raw, "start");
      if (
        start !== undefined &&
        start !== "" &&
        protocol.steps.length > 0 &&
        !protocol.stepIndex.has(start)
      ) {
        this.error(
          "unknown_reference",
          `${protocol.path}.start`,
          `${protocol.label}: start ${quote(start)} names no step`,
        );
      }
      const fallback = ownString(own(protocol.raw, "error_handling"), "fallback_step_id");
      if (
        fallback !== undefined &&
        fallback !== "" &&
        protocol.steps.length > 0 &&
        !protocol.stepIndex.has(fallback)
      ) {
        this.error(
          "unknown_reference",
          `${protocol.path}.error_handling.fallback_step_id`,
          `${protocol.label}: fallback_step_id ${quote(fallback)} names no step`,
        );
      }
      for (const step of protocol.steps) {
        const fields =
          step.action === "condition"
            ? ["next_step", "else_step", "on_error"]
            : step.action === "wait_event"
              ? ["next_step", "on_error", "on_timeout"]
              : ["next_step", "on_error"];
        const named = fields.map((field) => ({
          field,
          path: `${step.path}.${field}`,
          target: ownString(step.raw, field),
        }));
        if (step.action === "condition") {
          const { rules, groups } = rawConditionParts(own(step.raw, "conditions"), `${step.path}.conditions`);
          for (const { value, path } of rules)
            named.push({
              field: "next_step_id",
              path: `${path}.next_step_id`,
              target: ownString(value, "next_step_id"),
            });
          for (const { value, path } of groups)
            named.push({
              field: "default_next_step_id",
              path: `${path}.default_next_step_id`,
              target: ownString(value, "default_next_step_id"),
            });
        }
        for (const { field, path, target } of named) {
          if (target !== undefined && target !== "" && !protocol.stepIndex.has(target)) {
            this.error("unknown_reference", path, `${step.label}: ${field} ${quote(target)} names no step`);
          }
        }
        if (step.action === "tool_api") {
          const toolId = ownString(step.raw, "tool_api_id");
          if (toolId !== undefined && toolId !== "" && !toolIds.has(toolId)) {
            this.error(
              "unknown_reference",
              `${step.path}.tool_api_id`,
              `${step.label}: tool_api_id ${quote(toolId)} names no tool`,
            );
          }
        }
        if (step.action === "prompt") {
          const ids = own(step.raw, "instructions");
          if (Array.isArray(ids)) {
            ids.forEach((id, index) => {
              if (typeof id === "string" && !instructionIds.has(id)) {
                this.error(
                  "unknown_reference",
                  `${step.path}.instructions[${index}]`,
                  `${step.label}: instruction ${quote(id)} names no instruction`,
                );
              }
            });
          }
        }
        if (step.action === "parallel") this.checkParallelBranches(protocol, step);
        if (step.action === "call" || step.action === "foreach") this.checkChildProtocol(step);
      }
    }
  }

  /**
   * A `call` or `foreach` step's protocol must exist, and the step must give every variable
   * that protocol declares in `inputs` (`foreach` gives its item and `index` itself).
   */
  private checkChildProtocol(step: StepInfo): void {
    const name = ownString(step.raw, "protocol");
    if (name === undefined || name === "") return;
    const target = this.protocols.find((item) => item.name === name);
    if (!target) {
      this.error(
        "unknown_reference",
        `${step.path}.protocol`,
        `${step.label}: protocol ${quote(name)} names no protocol`,
      );
      return;
    }
    const input = own(step.raw, "input");
    const given = new Set(input !== null && typeof input === "object" ? Object.keys(input) : []);
    if (step.action === "foreach") {
      given.add(ownString(step.raw, "as") ?? "item");
      given.add("index");
    }
    const declared = own(target.raw, "inputs");
    if (!Array.isArray(declared)) return;
    const missing = declared.filter((item): item is string => typeof item === "string" && !given.has(item));
    if (missing.length > 0) {
      this.error(
        "missing_input",
        `${step.path}.input`,
        `${step.label}: protocol ${quote(name)} needs ${missing.map(quote).join(", ")}, which \`input\` does not give`,
      );
    }
  }

  private checkParallelBranches(protocol: ProtocolInfo, step: StepInfo): void {
    const branches = own(step.raw, "steps");
    if (!Array.isArray(branches)) return;
    const seen = new Set<string>();
    branches.forEach((branch, index) => {
      if (typeof branch !== "string" || branch === "") return;
      const path = `${step.path}.steps[${index}]`;
      if (seen.has(branch)) {
        this.error("schema", path, `${step.label}: parallel branch ${quote(branch)} is listed twice`);
        return;
      }
      seen.add(branch);
      const target = protocol.stepIndex.get(branch);
      if (!target) {
        this.error(
          "unknown_reference",
          path,
          `${step.label}: parallel branch ${quote(branch)} names no step`,
        );
      } else if (target.action !== undefined && !PARALLEL_BRANCH_ACTIONS.has(target.action)) {
        this.error(
          "schema",
          path,
          `${step.label}: parallel branch ${quote(branch)} is a \`${target.action}\` step; only prompt and tool_api steps can run in parallel`,
        );
      }
    });
  }

  private checkIntentReferences(intents: unknown[]): void {
    const names = new Set(
      this.protocols.map((protocol) => protocol.name).filter((name) => name !== undefined),
    );
    intents.forEach((intent, index) => {
      const target = ownString(intent, "protocol");
      if (target !== undefined && target !== "" && !names.has(target)) {
        const label = this.label("intent", ownString(intent, "name"), index);
        this.error(
          "unknown_reference",
          `$.intents[${index}].protocol`,
          `${label}: protocol ${quote(target)} names no protocol`,
        );
      }
    });
  }

  /** The flow edges out of a step: where the run can go next (EXIT: the run ends). */
  private successors(protocol: ProtocolInfo, step: StepInfo): number[] {
    const lookup = (id: string): number => protocol.stepIndex.get(id)?.index ?? DANGLING;
    const next = ownString(step.raw, "next_step");
    // The classes form's flow: a step without next_step ends the run.
    const sequential = ownString(protocol.raw, "flow") !== "explicit";
    const follow = next
      ? lookup(next)
      : sequential && step.index + 1 < protocol.steps.length
        ? step.index + 1
        : EXIT;
    const conditions = own(step.raw, "conditions");
    const guarded = Array.isArray(conditions) ? conditions.length > 0 : isObject(conditions);
    // Where a failure goes: the step's on_error, or its protocol's error_handling fallback.
    const fallback = ownString(own(protocol.raw, "error_handling"), "fallback_step_id");
    const onError =
      ownString(step.raw, "on_error") ??
      ((step.action === "prompt" || step.action === "tool_api") && step.id !== fallback
        ? fallback
        : undefined);
    // An event's timeout (`on_timeout`) is another way on.
    const onTimeout = step.action === "wait_event" ? ownString(step.raw, "on_timeout") : undefined;
    const failure = [onError, onTimeout]
      .filter((id): id is string => id !== undefined && id !== "")
      .map(lookup);
    switch (step.action) {
      case "end":
        // A guarded end step is skipped when its guard fails, and the flow goes on.
        return guarded ? [EXIT, follow] : [EXIT];
      case "condition": {
        const elseStep = ownString(step.raw, "else_step");
        const orElse = (id: string | undefined) => (id ? lookup(id) : elseStep ? lookup(elseStep) : EXIT);
        if (isObject(conditions)) {
          const rules = own(conditions, "rules");
          const targets = Array.isArray(rules) ? rules.map((rule) => ownString(rule, "next_step_id")) : [];
          return [
            ...targets.map((id) => (id ? lookup(id) : follow)),
            follow,
            orElse(ownString(conditions, "default_next_step_id")),
          ];
        }
        if (Array.isArray(conditions) && conditions.some((rule) => ownString(rule, "next_step_id"))) {
          return [
            ...conditions.map((rule) => {
              const id = ownString(rule, "next_step_id");
              return id ? lookup(id) : follow;
            }),
            orElse(next),
          ];
        }
        return [follow, orElse(undefined), ...failure];
      }
      case "input": {
        // A form whose replies run out goes to `on_exhausted`.
        const exhausted = ownString(own(step.raw, "validate"), "on_exhausted");
        return exhausted ? [follow, lookup(exhausted), ...failure] : [follow, ...failure];
      }
      default:
        return [follow, ...failure];
    }
  }

  private checkFlows(): void {
    for (const protocol of this.protocols) {
      if (protocol.steps.length === 0) continue;
      const startId = ownString(protocol.raw, "start");
      const start = startId ? protocol.stepIndex.get(startId) : protocol.steps[0];
      if (!start) continue;
      const startLabel = start.id === undefined ? `step #${start.index}` : quote(start.id);
      // The flow walk; parallel branches are reached too, but the flow does not go on from them.
      const visited = new Set<number>([start.index]);
      const reached = new Set<number>([start.index]);
      const queue = [start.index];
      let exits = false;
      while (queue.length > 0) {
        const step = protocol.steps[queue.shift()!]!;
        if (step.action === "parallel") {
          const branches = own(step.raw, "steps");
          if (Array.isArray(branches)) {
            for (const branch of branches) {
              const target = typeof branch === "string" ? protocol.stepIndex.get(branch) : undefined;
              if (target) reached.add(target.index);
            }
          }
        }
        for (const target of this.successors(protocol, step)) {
          // An edge to a missing step is reported as unknown_reference; counting it as an
          // exit keeps no_exit from repeating that error.
          if (target === EXIT || target === DANGLING) exits = true;
          else if (!visited.has(target)) {
            visited.add(target);
            reached.add(target);
            queue.push(target);
          }
        }
      }
      if (!exits) {
        this.error(
          "no_exit",
          protocol.path,
          `${protocol.label}: from the start step ${startLabel} no \`end\` step or end of the step list can be reached; the run could only stop at max_steps`,
        );
      }
      for (const step of protocol.steps) {
        if (!reached.has(step.index)) {
          const name = step.id === undefined ? `#${step.index}` : quote(step.id);
          this.warn(
            "unreachable_step",
            step.path,
            `${protocol.label}: step ${name} is never reached from the start step ${startLabel}`,
          );
        }
      }
      this.checkProtocolPlaceholders(protocol);
    }
  }

  private missingVariable(protocol: ProtocolInfo, path: string): string | undefined {
    const sessionKey = sessionKeyOf(path);
    if (sessionKey !== undefined && this.sessionKeys !== undefined && !this.sessionKeys.has(sessionKey)) {
      const known = [...this.sessionKeys];
      return `the document's \`session\` class gives no data key ${quote(sessionKey)} and no tool's response_mapping writes it (${known.length ? `its keys: ${known.join(", ")}` : "it has no data"})`;
    }
    if (isBuiltinPath(path)) return undefined;
    const first = path.split(".")[0] ?? path;
    if (protocol.variables.has(first)) return undefined;
    const hint = /^[A-Z][A-Z0-9_]*$/.test(first) ? ` (for a secret write {secrets.${first}})` : "";
    return `no input, step output or built-in of ${protocol.label} provides ${quote(first)}${hint}`;
  }

  private checkProtocolPlaceholders(protocol: ProtocolInfo): void {
    for (const step of protocol.steps) {
      for (const field of ["prompt", "system", "response_template"]) {
        const template = ownString(step.raw, field);
        if (template === undefined) continue;
        for (const part of parseTemplate(template)) {
          if (part.kind !== "placeholder") continue;
          const why = this.missingVariable(protocol, part.path);
          if (why) {
            this.warn(
              "unresolvable_placeholder",
              joinPath(step.path, field),
              `${step.label}: placeholder ${quote(part.raw)}: ${why}`,
            );
          }
        }
      }
      const { rules } = rawConditionParts(own(step.raw, "conditions"), `${step.path}.conditions`);
      for (const { value: condition, path } of rules) {
        const variable = ownString(condition, "variable");
        if (!variable) continue;
        const compiled = compileOperand(variable);
        if (!compiled.ok) continue;
        for (const read of operandPaths(compiled.operand)) {
          const why = this.missingVariable(protocol, read);
          if (why) {
            this.warn(
              "unresolvable_placeholder",
              `${path}.variable`,
              `${step.label}: condition variable ${quote(variable)}: ${why}`,
            );
          }
        }
      }
    }
  }

  /** A tool's placeholders are checked in each protocol that calls it. */
  private checkToolPlaceholders(tools: unknown[]): void {
    tools.forEach((raw, index) => {
      const id = ownString(raw, "id");
      if (id === undefined || !isObject(raw)) return;
      const callers = this.protocols.filter((protocol) =>
        protocol.steps.some(
          (step) => step.action === "tool_api" && ownString(step.raw, "tool_api_id") === id,
        ),
      );
      if (callers.length === 0) return;
      const label = this.label("tool", id, index);
      for (const { template, path, field } of toolTemplates(raw, `$.tools[${index}]`)) {
        for (const part of parseTemplate(template)) {
          if (part.kind !== "placeholder") continue;
          for (const protocol of callers) {
            const why = this.missingVariable(protocol, part.path);
            if (why) {
              this.warn(
                "unresolvable_placeholder",
                path,
                `${label}: placeholder ${quote(part.raw)} in \`${field}\`: ${why}, which calls the tool`,
              );
            }
          }
        }
      }
    });
  }

  private unknownFields(raw: unknown, known: readonly string[], path: string, label: string): void {
    if (!isObject(raw)) return;
    for (const key of Object.keys(raw)) {
      if (!known.includes(key))
        this.warn("unknown_field", joinPath(path, key), `${label}: unknown field ${quote(key)} (ignored)`);
    }
  }

  private checkUnknownFields(input: Raw, sections: Record<(typeof SECTION_KEYS)[number], unknown[]>): void {
    this.unknownFields(input, TOP_LEVEL_KEYS, "$", "document");
    const retryKeys = Object.keys(Retry.shape);
    const conditionKeys = Object.keys(Condition.shape);
    const groupKeys = Object.keys(ConditionGroup.shape);
    const simple: Array<[(typeof SECTION_KEYS)[number], readonly string[], string, string]> = [
      ["intents", Object.keys(Intent.shape), "intent", "name"],
      ["instructions", Object.keys(Instruction.shape), "instruction", "id"],
      ["profiles", Object.keys(Profile.shape), "profile", "user_id"],
      ["contracts", Object.keys(Contract.shape), "contract", "contract_id"],
    ];
    for (const [section, keys, noun, idKey] of simple) {
      sections[section].forEach((item, index) => {
        this.unknownFields(
          item,
          keys,
          `$.${section}[${index}]`,
          this.label(noun, ownString(item, idKey), index),
        );
      });
    }
    const toolKeys = Object.keys(Tool.shape);
    const authKeys = Object.keys(Authentication.shape);
    sections.tools.forEach((tool, index) => {
      const path = `$.tools[${index}]`;
      const label = this.label("tool", ownString(tool, "id"), index);
      this.unknownFields(tool, toolKeys, path, label);
      this.unknownFields(own(tool, "authentication"), authKeys, `${path}.authentication`, label);
      this.unknownFields(own(tool, "retry"), retryKeys, `${path}.retry`, label);
    });
    const protocolKeys = Object.keys(Protocol.shape);
    for (const protocol of this.protocols) {
      this.unknownFields(protocol.raw, protocolKeys, protocol.path, protocol.label);
      for (const step of protocol.steps) {
        if (step.action === undefined) continue;
        this.unknownFields(step.raw, Object.keys(STEP_SCHEMAS[step.action].shape), step.path, step.label);
        this.unknownFields(own(step.raw, "retry"), retryKeys, `${step.path}.retry`, step.label);
        const { rules, groups } = rawConditionParts(own(step.raw, "conditions"), `${step.path}.conditions`);
        for (const { value, path } of rules) this.unknownFields(value, conditionKeys, path, step.label);
        for (const { value, path } of groups) this.unknownFields(value, groupKeys, path, step.label);
      }
    }
  }
}

/** The session data key a path reads (`session.data.KEY` or `session.KEY`), if it reads one. */
function sessionKeyOf(path: string): string | undefined {
  const segments = path.split(".");
  if (segments[0] !== "session") return undefined;
  if (segments[1] === "data" && segments[2] !== undefined) return segments[2];
  return segments[1];
}

/** Whether a condition step says itself where each outcome goes (rules with next_step_id, or a group's default). */
function routesItself(step: Raw): boolean {
  const conditions = own(step, "conditions");
  if (isObject(conditions)) return own(conditions, "default_next_step_id") !== undefined;
  return Array.isArray(conditions) && conditions.some((rule) => own(rule, "next_step_id") !== undefined);
}

/** Every rule and group of raw conditions (nested ones too), each with its path. */
function rawConditionParts(
  conditions: unknown,
  base: string,
): { rules: Array<{ value: Raw; path: string }>; groups: Array<{ value: Raw; path: string }> } {
  const rules: Array<{ value: Raw; path: string }> = [];
  const groups: Array<{ value: Raw; path: string }> = [];
  const walkRules = (list: unknown[], path: string, depth: number): void => {
    list.forEach((rule, index) => {
      if (!isObject(rule)) return;
      const rulePath = `${path}[${index}]`;
      rules.push({ value: rule, path: rulePath });
      const nested = own(rule, "sub_conditions");
      if (isObject(nested)) walkGroup(nested, `${rulePath}.sub_conditions`, depth + 1);
    });
  };
  const walkGroup = (group: Raw, path: string, depth: number): void => {
    if (depth > MAX_DOCUMENT_DEPTH) return;
    groups.push({ value: group, path });
    const list = own(group, "rules");
    if (Array.isArray(list)) walkRules(list, `${path}.rules`, depth);
  };
  if (Array.isArray(conditions)) walkRules(conditions, base, 0);
  else if (isObject(conditions)) walkGroup(conditions, base, 0);
  return { rules, groups };
}

/** The templated strings of a tool: endpoint, header values, parameters (deep), authentication. */
function toolTemplates(tool: Raw, base: string): Array<{ template: string; path: string; field: string }> {
  const out: Array<{ template: string; path: string; field: string }> = [];
  const endpoint = own(tool, "endpoint");
  if (typeof endpoint === "string")
    out.push({ template: endpoint, path: `${base}.endpoint`, field: "endpoint" });
  const headers = own(tool, "headers");
  if (isObject(headers)) {
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value === "string")
        out.push({ template: value, path: joinPath(`${base}.headers`, name), field: `headers.${name}` });
    }
  }
  const collect = (value: unknown, path: string, field: string): void => {
    if (typeof value === "string") out.push({ template: value, path, field });
    else if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) collect(item, `${path}[${i}]`, `${field}.${i}`);
    } else if (isObject(value))
      for (const [key, item] of Object.entries(value)) collect(item, joinPath(path, key), `${field}.${key}`);
  };
  collect(own(tool, "parameters"), `${base}.parameters`, "parameters");
  const auth = own(tool, "authentication");
  for (const key of ["token", "header", "key", "username", "password"]) {
    const value = own(auth, key);
    if (typeof value === "string")
      out.push({ template: value, path: `${base}.authentication.${key}`, field: `authentication.${key}` });
  }
  return out;
}

/** A stand-in for a placeholder that opens the endpoint: it may hold the whole base URL. */
const PLACEHOLDER_BASE = "https://placeholder.example";

/** Why an endpoint template cannot give an absolute http(s) URL, or undefined. */
export function endpointProblem(template: string): string | undefined {
  let url = "";
  parseTemplate(template).forEach((part, index) => {
    if (part.kind === "text") url += part.text;
    else if (part.kind === "placeholder") url += index === 0 ? PLACEHOLDER_BASE : "x";
    else url += part.raw;
  });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not an absolute URL (it needs http:// or https:// and a host)";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `uses ${parsed.protocol.replace(/:$/, "")}; only http and https are supported`;
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url))
    return "is not an absolute URL (it needs http:// or https:// and a host)";
  if (parsed.hostname === "") return "has no host";
  return undefined;
}
