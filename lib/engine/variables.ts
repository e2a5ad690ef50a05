/**
 * What a document can read through placeholders and conditions: the run's own variables,
 * `session.*`, `profile.*`, `intent`, `now` and `secrets.NAME`. Nothing else of the
 * environment is reachable.
 */
import type { Profile } from "../mova/schema.ts";
import { getPath, type Resolver } from "../mova/placeholders.ts";
import { SESSION_WRITES } from "../mova/response-mapping.ts";
import type { SecretsPort } from "../ports.ts";

interface ResolverSources {
  /** The run's own variables (inputs, step outputs, `user_input`); read live, not copied. */
  variables: Record<string, unknown>;
  session?: Record<string, unknown> | undefined;
  /** The document's `session` class data: what a run reads when its session has no such key. */
  sessionDefaults?: Record<string, unknown> | undefined;
  profile?: Profile | undefined;
  intent?: string | undefined;
  /** Epoch ms, for `now`. */
  now: () => number;
  secrets?: SecretsPort | undefined;
  /** Told of every secret read, so that its value can be redacted from results. */
  onSecretRead?: (name: string, value: string) => void;
}

function splitRoot(path: string): [string, string | undefined] {
  const dot = path.indexOf(".");
  return dot === -1 ? [path, undefined] : [path.slice(0, dot), path.slice(dot + 1)];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Reads the session: the run's own writes (response_mapping) first, then the session's
 * data, then the document's `session` class. `session.data.KEY` is MOVA 2.x's spelling of
 * `session.KEY`; a session whose data really has a `data` key is still read as written when
 * KEY is found nowhere else.
 */
function readSession(sources: ResolverSources, rest: string | undefined): unknown {
  const writes = sources.variables[SESSION_WRITES];
  const layers = [isObject(writes) ? writes : undefined, sources.session, sources.sessionDefaults].filter(
    (layer) => layer !== undefined,
  );
  const whole = (): Record<string, unknown> | undefined =>
    layers.length === 0
      ? undefined
      : // A null prototype: a `__proto__` key of the data stays a key, never a prototype.
        Object.assign(Object.create(null) as Record<string, unknown>, ...[...layers].reverse());
  if (rest === undefined || rest === "data") return whole();
  const lookup = (path: string): unknown => {
    for (const layer of layers) {
      const value = getPath(layer, path);
      if (value !== undefined) return value;
    }
    return undefined;
  };
  if (rest.startsWith("data.")) return lookup(rest.slice(5)) ?? lookup(rest);
  return lookup(rest);
}

/** A resolver for placeholders and conditions; `undefined` means "no value". */
export function createResolver(sources: ResolverSources): Resolver {
  return (path: string) => {
    const [root, rest] = splitRoot(path);
    switch (root) {
      case "secrets": {
        if (rest === undefined || rest.includes(".") || !sources.secrets) return undefined;
        const value = sources.secrets.get(rest);
        if (value === undefined) return undefined;
        sources.onSecretRead?.(rest, value);
        return value;
      }
      case "session":
        return readSession(sources, rest);
      case "profile":
        return rest === undefined ? sources.profile : getPath(sources.profile, rest);
      case "intent":
        if (rest === undefined && sources.intent !== undefined) return sources.intent;
        break;
      case "now":
        if (rest === undefined) return new Date(sources.now()).toISOString();
        break;
    }
    return getPath(sources.variables, path);
  };
}
