/**
 * The two forms of a MOVA 2.x document, read into one. The sections form
 * (`{ version, intents, protocols, tools, … }`) is the model; the specification's `classes`
 * form (`{ version, classes: { intent, protocol, tool_api, session, profile, contract,
 * instruction } }`, each class one object or a list) is rewritten into it here, before
 * validation, so that nothing downstream can tell the two apart. The rewrite works on the
 * raw value, keeps the input untouched, and remembers where each rewritten part was written
 * so that the validator's messages point into the document as its author wrote it.
 */

export type DocumentForm = "sections" | "classes";

interface FormIssue {
  code: "schema" | "unknown_field";
  path: string;
  message: string;
}

export interface NormalisedForm {
  form: DocumentForm;
  /** The document in the sections form (not yet validated). */
  document: unknown;
  /** Pairs of (path in `document`, path as written), most specific first. */
  paths: Array<[string, string]>;
  errors: FormIssue[];
  warnings: FormIssue[];
}

type Raw = Record<string, unknown>;

function isObject(value: unknown): value is Raw {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function own(value: unknown, key: string): unknown {
  return isObject(value) && Object.hasOwn(value, key) ? value[key] : undefined;
}

/** A copy of `value` without `key`: the key's own property is dropped, the rest kept as is. */
function without(value: Raw, ...keys: string[]): Raw {
  const copy: Raw = {};
  for (const key of Object.keys(value)) if (!keys.includes(key)) copy[key] = value[key];
  return copy;
}

/** Each class of the classes form, and the section it becomes. */
const CLASS_SECTIONS = {
  intent: "intents",
  protocol: "protocols",
  tool_api: "tools",
  profile: "profiles",
  contract: "contracts",
  instruction: "instructions",
} as const;
const KNOWN_CLASSES = [...Object.keys(CLASS_SECTIONS), "session"];
const SECTION_KEYS = ["intents", "protocols", "tools", "instructions", "profiles", "contracts"];
/** The id a single `tool_api` object gets when it has none. */
export const SINGLE_TOOL_ID = "tool_api";

class Normaliser {
  readonly paths: Array<[string, string]> = [];
  readonly errors: FormIssue[] = [];
  readonly warnings: FormIssue[] = [];

  map(normalised: string, written: string): void {
    if (normalised !== written) this.paths.push([normalised, written]);
  }

  /** Steps may write `next_step_id` (both forms): it is `next_step`. */
  steps(protocol: Raw, normalisedPath: string, writtenPath: string): Raw {
    const steps = own(protocol, "steps");
    if (!Array.isArray(steps)) return protocol;
    const renamed = steps.map((step, index) => {
      if (!isObject(step) || !Object.hasOwn(step, "next_step_id")) return step;
      const stepPath = `${normalisedPath}.steps[${index}]`;
      const written = `${writtenPath}.steps[${index}]`;
      const alias = step.next_step_id;
      if (Object.hasOwn(step, "next_step") && step.next_step !== alias) {
        this.errors.push({
          code: "schema",
          path: `${written}.next_step_id`,
          message: `step ${JSON.stringify(own(step, "id"))}: \`next_step\` and \`next_step_id\` name different steps; write one of them`,
        });
        return without(step, "next_step_id");
      }
      this.map(`${stepPath}.next_step`, `${written}.next_step_id`);
      return { ...without(step, "next_step_id"), next_step: alias };
    });
    return { ...protocol, steps: renamed };
  }

  sections(input: Raw): Raw {
    const protocols = own(input, "protocols");
    if (!Array.isArray(protocols)) return input;
    return {
      ...input,
      protocols: protocols.map((protocol, index) =>
        isObject(protocol)
          ? this.steps(protocol, `$.protocols[${index}]`, `$.protocols[${index}]`)
          : protocol,
      ),
    };
  }

  classes(input: Raw): Raw {
    const classes = input.classes;
    const out: Raw = without(input, "classes");
    const mixed = SECTION_KEYS.filter((key) => Object.hasOwn(input, key));
    if (mixed.length > 0) {
      this.errors.push({
        code: "schema",
        path: "$.classes",
        message: `a document is written with \`classes\` or with sections, not both (it also has ${mixed.map((key) => `\`${key}\``).join(", ")})`,
      });
      return out;
    }
    if (!isObject(classes)) {
      this.errors.push({
        code: "schema",
        path: "$.classes",
        message:
          "`classes` must be an object of classes (intent, protocol, tool_api, session, profile, contract, instruction)",
      });
      return out;
    }
    for (const key of Object.keys(classes)) {
      if (!KNOWN_CLASSES.includes(key))
        this.warnings.push({
          code: "unknown_field",
          path: `$.classes.${key}`,
          message: `unknown class \`${key}\` (ignored); the classes are ${KNOWN_CLASSES.join(", ")}`,
        });
    }
    for (const [name, section] of Object.entries(CLASS_SECTIONS)) {
      const value = own(classes, name);
      if (value === undefined) continue;
      const items = this.items(value, `$.classes.${name}`);
      if (!items) continue;
      out[section] = items.map(({ item, path }, index) => {
        const target = `$.${section}[${index}]`;
        this.map(target, path);
        return this.item(name as keyof typeof CLASS_SECTIONS, item, target, path);
      });
    }
    const tool = own(classes, "tool_api");
    if (isObject(tool)) this.answerEveryToolId(out, tool);
    const session = own(classes, "session");
    if (session !== undefined) {
      if (isObject(session)) {
        out.session = session;
        this.map("$.session", "$.classes.session");
      } else
        this.errors.push({
          code: "schema",
          path: "$.classes.session",
          message: "the `session` class must be one object (`data`, `ttl`)",
        });
    }
    return out;
  }

  /** One object or a list of them, each with the path it was written at. */
  private items(value: unknown, path: string): Array<{ item: unknown; path: string }> | undefined {
    if (Array.isArray(value)) return value.map((item, index) => ({ item, path: `${path}[${index}]` }));
    if (isObject(value)) return [{ item: value, path }];
    this.errors.push({
      code: "schema",
      path,
      message: `a class must be one object or a list of them, not ${value === null ? "null" : typeof value}`,
    });
    return undefined;
  }

  private item(name: keyof typeof CLASS_SECTIONS, item: unknown, target: string, path: string): unknown {
    if (!isObject(item)) return item;
    switch (name) {
      case "protocol":
        // The specification's flow: a step without next_step_id ends the run.
        return this.steps(Object.hasOwn(item, "flow") ? item : { ...item, flow: "explicit" }, target, path);
      case "tool_api":
        return this.tool(item, target, path);
      case "instruction": {
        const out = without(item, "text");
        if (Object.hasOwn(item, "text") && !Object.hasOwn(item, "content")) {
          out.content = item.text;
          this.map(`${target}.content`, `${path}.text`);
        }
        if (!Object.hasOwn(out, "title") && typeof out.id === "string") out.title = out.id;
        return out;
      }
      default:
        return item;
    }
  }

  /** `url` is the endpoint; `body` (a JSON body) joins the parameters, which become the body. */
  private tool(item: Raw, target: string, path: string): Raw {
    const out = without(item, "url", "body");
    if (Object.hasOwn(item, "url") && !Object.hasOwn(item, "endpoint")) {
      out.endpoint = item.url;
      this.map(`${target}.endpoint`, `${path}.url`);
    }
    const body = own(item, "body");
    if (body !== undefined) {
      const parameters = own(item, "parameters");
      if (!isObject(body)) {
        this.errors.push({
          code: "schema",
          path: `${path}.body`,
          message: "a tool's `body` must be an object",
        });
      } else if (parameters === undefined) {
        out.parameters = body;
        this.map(`${target}.parameters`, `${path}.body`);
      } else if (isObject(parameters)) out.parameters = { ...parameters, ...body };
    }
    return out;
  }

  /** A single `tool_api` object answers every `tool_api_id`, as the specification's parser does. */
  private answerEveryToolId(out: Raw, tool: Raw): void {
    const tools = out.tools as Raw[];
    const first = tools[0];
    if (!first) return;
    if (typeof first.id !== "string" || first.id === "") first.id = SINGLE_TOOL_ID;
    const id = first.id as string;
    const protocols = out.protocols;
    if (!Array.isArray(protocols) || tool === undefined) return;
    out.protocols = protocols.map((protocol) => {
      const steps = own(protocol, "steps");
      if (!isObject(protocol) || !Array.isArray(steps)) return protocol;
      return {
        ...protocol,
        steps: steps.map((step) =>
          isObject(step) && step.action === "tool_api" && step.tool_api_id !== id
            ? { ...step, tool_api_id: id }
            : step,
        ),
      };
    });
  }
}

/** Reads either form into the sections form. Never throws; the input is not changed. */
export function normaliseForm(input: unknown): NormalisedForm {
  const normaliser = new Normaliser();
  let form: DocumentForm = "sections";
  let document = input;
  if (isObject(input)) {
    if (Object.hasOwn(input, "classes")) {
      form = "classes";
      document = normaliser.classes(input);
    } else document = normaliser.sections(input);
  }
  // Longest first, so that a field's own mapping wins over its item's.
  const paths = normaliser.paths.sort((a, b) => b[0].length - a[0].length);
  return { form, document, paths, errors: normaliser.errors, warnings: normaliser.warnings };
}

/** A path into the normalised document, as the author wrote it. */
export function writtenPath(paths: ReadonlyArray<[string, string]>, path: string): string {
  for (const [normalised, written] of paths) {
    if (path === normalised) return written;
    if (path.startsWith(normalised)) {
      const next = path[normalised.length];
      if (next === "." || next === "[") return written + path.slice(normalised.length);
    }
  }
  return path;
}
