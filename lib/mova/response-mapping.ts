/**
 * The specification's `response_mapping` on a tool: `{ "target": "response.path" }` sets
 * the variable `target` (or, for `session.data.KEY` / `session.KEY`, the session data key
 * KEY) from a path of the parsed response. A path absent there is looked up under the
 * response's `data` object, as the specification's parser does; still absent, nothing is set.
 *
 * A run's session writes are kept among its variables, under SESSION_WRITES, so that they
 * are checkpointed with the run and read back first by `{session.*}` placeholders; a
 * service that keeps the session merges them into the session's data when the run ends.
 */
import { getPath } from "./placeholders.ts";

/** The variable holding the session data keys a run wrote. */
export const SESSION_WRITES = "session";

/** Names that could reach an object's machinery: never written. */
const FORBIDDEN = new Set(["__proto__", "prototype", "constructor"]);

type Record_ = Record<string, unknown>;

function isObject(value: unknown): value is Record_ {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The session data key path a target names (`session.data.a.b` → `a.b`), if it names one. */
export function sessionTarget(target: string): string | undefined {
  if (target.startsWith("session.data.")) return target.slice("session.data.".length);
  if (target.startsWith("session.") && target !== "session.data") return target.slice("session.".length);
  return undefined;
}

/** Reads `response.a.b` (or `a.b`) from the parsed body, then from its `data` object. */
export function readResponsePath(body: unknown, source: string): unknown {
  const path = source === "response" ? "" : source.startsWith("response.") ? source.slice(9) : source;
  if (path === "") return body;
  const direct = getPath(body, path);
  if (direct !== undefined) return direct;
  const data = isObject(body) && Object.hasOwn(body, "data") ? body.data : undefined;
  return data === undefined ? undefined : getPath(data, path);
}

/** Sets `a.b.c` inside `target`, making plain objects on the way; false when a name is refused. */
function setPath(target: Record_, path: string, value: unknown): boolean {
  const segments = path.split(".");
  if (segments.some((segment) => segment === "" || FORBIDDEN.has(segment))) return false;
  let current = target;
  for (const segment of segments.slice(0, -1)) {
    const next = Object.hasOwn(current, segment) ? current[segment] : undefined;
    if (isObject(next)) current = next;
    else {
      const made: Record_ = {};
      current[segment] = made;
      current = made;
    }
  }
  current[segments.at(-1) as string] = value;
  return true;
}

/**
 * Applies a mapping to the run's variables (changed in place). Answers the targets set and
 * the targets whose response path was absent.
 */
export function applyResponseMapping(
  mapping: Readonly<Record<string, string>>,
  body: unknown,
  variables: Record_,
): { set: string[]; absent: string[] } {
  const set: string[] = [];
  const absent: string[] = [];
  for (const [target, source] of Object.entries(mapping)) {
    const value = readResponsePath(body, source);
    if (value === undefined) {
      absent.push(target);
      continue;
    }
    const sessionKey = sessionTarget(target);
    let written: boolean;
    if (sessionKey === undefined) written = setPath(variables, target, value);
    else {
      const writes = isObject(variables[SESSION_WRITES]) ? (variables[SESSION_WRITES] as Record_) : {};
      written = setPath(writes, sessionKey, value);
      variables[SESSION_WRITES] = writes;
    }
    if (written) set.push(target);
  }
  return { set, absent };
}

/** The session data keys a run wrote (its SESSION_WRITES variable), if any. */
export function sessionWritesOf(
  variables: Readonly<Record<string, unknown>> | undefined,
): Record_ | undefined {
  const writes = variables?.[SESSION_WRITES];
  return isObject(writes) && Object.keys(writes).length > 0 ? writes : undefined;
}

/** A session's data with a run's writes laid over it (key by key, the run's value winning). */
export function withSessionWrites(
  data: Readonly<Record_>,
  variables: Readonly<Record<string, unknown>> | undefined,
): Record_ {
  const writes = sessionWritesOf(variables);
  if (!writes) return { ...data };
  const out: Record_ = { ...data };
  for (const key of Object.keys(writes)) if (!FORBIDDEN.has(key)) out[key] = writes[key];
  return out;
}
