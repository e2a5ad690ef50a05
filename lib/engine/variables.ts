/**
 * What a document can read through placeholders and conditions: the run's own variables,
 * `session.*`, `profile.*`, `intent`, `now` and `secrets.NAME`. Nothing else of the
 * environment is reachable.
 */
import type { Profile } from "../mova/schema.ts";
import { getPath, type Resolver } from "../mova/placeholders.ts";
import { EVENT_NAME } from "../mova/schema.ts";
import type { SecretsPort } from "../ports.ts";

interface ResolverSources {
  /** The run's own variables (inputs, step outputs, `user_input`); read live, not copied. */
  variables: Record<string, unknown>;
  session?: Record<string, unknown> | undefined;
  profile?: Profile | undefined;
  intent?: string | undefined;
  /** Epoch ms, for `now`. */
  now: () => number;
  secrets?: SecretsPort | undefined;
  /** Told of every secret read, so that its value can be redacted from results. */
  onSecretRead?: (name: string, value: string) => void;
  /** `{execution.id}`. */
  executionId?: string | undefined;
  /** `{callback.EVENT}`: the signed URL delivering EVENT to this execution. */
  callbackUrl?: ((event: string) => string | undefined) | undefined;
}

function splitRoot(path: string): [string, string | undefined] {
  const dot = path.indexOf(".");
  return dot === -1 ? [path, undefined] : [path.slice(0, dot), path.slice(dot + 1)];
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
        return rest === undefined ? sources.session : getPath(sources.session, rest);
      case "profile":
        return rest === undefined ? sources.profile : getPath(sources.profile, rest);
      case "intent":
        if (rest === undefined && sources.intent !== undefined) return sources.intent;
        break;
      case "now":
        if (rest === undefined) return new Date(sources.now()).toISOString();
        break;
      case "execution":
        if (rest === "id" && sources.executionId !== undefined) return sources.executionId;
        break;
      case "callback":
        if (rest !== undefined && EVENT_NAME.test(rest) && sources.callbackUrl) {
          const url = sources.callbackUrl(rest);
          if (url !== undefined) return url;
        }
        break;
    }
    return getPath(sources.variables, path);
  };
}
