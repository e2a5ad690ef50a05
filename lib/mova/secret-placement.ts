/**
 * Where a document may use a secret. A secret goes out only to the tool that needs it: in a
 * tool's header values, its `authentication` and its parameter (or body) values. Anywhere
 * else it could be read back: a prompt sends it to the model (which can spell it out in a
 * form redaction does not know), a condition answers questions about it one bit per run, a
 * host name leaks it through DNS, a template or a variable returns it to the caller.
 * `{secrets.NAME}` anywhere else, and a condition `variable` that reads `secrets`, are the
 * validation error `secret_not_allowed_here`.
 */
import { parseTemplate } from "./placeholders.ts";

export interface SecretPlacementIssue {
  /** The JSON path of the offending string, e.g. `$.protocols[0].steps[1].prompt`. */
  path: string;
  message: string;
}

type Segment = string | number;

const AUTH_FIELDS = new Set(["token", "key", "username", "password"]);
/** A condition or expression that names `secrets` as a variable (not inside quotes, roughly). */
const READS_SECRETS = /(?:^|[^\p{L}\p{N}_$.'"])secrets(?:\.|$|[^\p{L}\p{N}_$])/u;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function pathText(segments: readonly Segment[]): string {
  let out = "$";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** Whether a template reads a secret. */
export function templateReadsSecret(template: string): boolean {
  if (!template.includes("secrets")) return false;
  return parseTemplate(template).some(
    (part) => part.kind === "placeholder" && (part.path === "secrets" || part.path.startsWith("secrets.")),
  );
}

/**
 * Where the tool's own fields begin: `tools[i]` in the sections form, `classes.tool_api`
 * (one object or a list) in the classes form. Returns the rest of the path, or undefined.
 */
function insideTool(segments: readonly Segment[]): readonly Segment[] | undefined {
  if (segments[0] === "tools" && typeof segments[1] === "number") return segments.slice(2);
  if (segments[0] === "classes" && segments[1] === "tool_api")
    return typeof segments[2] === "number" ? segments.slice(3) : segments.slice(2);
  return undefined;
}

/** Whether a string at `segments` may read a secret; `document` to look at the enclosing values. */
function secretAllowedAt(document: unknown, segments: readonly Segment[]): boolean {
  const rest = insideTool(segments);
  if (!rest || rest.length < 2) return false;
  const [field, key] = rest;
  if (field === "headers") return rest.length === 2 && typeof key === "string";
  if (field === "authentication") return rest.length === 2 && typeof key === "string" && AUTH_FIELDS.has(key);
  if (field === "body") return true;
  if (field === "parameters") {
    // An entry that is a JSON Schema (it has a `type`) is described to the model: no secret there.
    const toolPath = segments.slice(0, segments.length - rest.length);
    const entry = valueAt(document, [...toolPath, "parameters", key as Segment]);
    return !(isObject(entry) && typeof entry.type === "string");
  }
  return false;
}

function valueAt(document: unknown, segments: readonly Segment[]): unknown {
  let value = document;
  for (const segment of segments) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

/**
 * Every place where the document reads a secret it may not. The document must already be
 * bounded in depth and size (the validator's structure check runs first).
 */
export function secretPlacementIssues(document: unknown): SecretPlacementIssue[] {
  const issues: SecretPlacementIssue[] = [];
  const visit = (value: unknown, segments: Segment[]): void => {
    if (typeof value === "string") {
      if (templateReadsSecret(value) && !secretAllowedAt(document, segments)) {
        issues.push({
          path: pathText(segments),
          message:
            "a secret may be used only in a tool's header values, `authentication` and parameter or body values",
        });
      }
      return;
    }
    if (Array.isArray(value)) {
      for (const [index, item] of value.entries()) visit(item, [...segments, index]);
      return;
    }
    if (!isObject(value)) return;
    for (const [key, item] of Object.entries(value)) {
      if (key === "variable" && typeof item === "string" && READS_SECRETS.test(item)) {
        issues.push({
          path: pathText([...segments, key]),
          message:
            "a condition or expression may not read a secret (it would answer questions about its value)",
        });
        continue;
      }
      visit(item, [...segments, key]);
    }
  };
  visit(document, []);
  return issues;
}
