/**
 * Turns a tool definition and the run's variables into a ToolRequest: endpoint, headers,
 * parameters and authentication rendered; GET/DELETE parameters as the query string,
 * otherwise the JSON body.
 */
import {
  parseTemplate,
  placeholdersOf,
  type Resolver,
  renderTemplate,
  renderValue,
  stringifyValue,
} from "../mova/placeholders.ts";
import { HTTP_METHODS, type HttpMethod, type Tool } from "../mova/schema.ts";
import type { ToolRequest } from "../ports.ts";
import { MovaError } from "../errors.ts";

interface BuiltToolRequest {
  request: ToolRequest;
  /** Placeholders that had no value and were left as written. */
  unresolved: string[];
  /** Values derived from secrets (a basic credential) that must be redacted too. */
  derivedSecrets: string[];
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DEFAULT_API_KEY_HEADER = "X-API-Key";

function addUnresolved(target: string[], paths: string[]): void {
  for (const path of paths) if (!target.includes(path)) target.push(path);
}

/** True once the text so far has passed the scheme and host of a URL. */
function pastAuthority(text: string): boolean {
  const scheme = text.indexOf("://");
  return scheme !== -1 && /[/?#]/.test(text.slice(scheme + 3));
}

/**
 * Renders an endpoint template. Values placed in the path or query are URL-encoded (a city
 * called "São Paulo/Centro" stays one segment); values placed before the path (a base URL
 * held in a variable) are inserted as they are.
 */
export function renderEndpoint(template: string, resolve: Resolver, unresolved: string[] = []): string {
  let url = "";
  for (const part of parseTemplate(template)) {
    if (part.kind === "text") url += part.text;
    else if (part.kind === "invalid") url += part.raw;
    else {
      const value = resolve(part.path);
      if (value === undefined) {
        url += part.raw;
        addUnresolved(unresolved, [part.path]);
      } else {
        const text = stringifyValue(value);
        url += pastAuthority(url) ? encodeURIComponent(text) : text;
      }
    }
  }
  return url;
}

function renderHeader(name: string, template: string, resolve: Resolver, unresolved: string[]): string {
  if (!HEADER_NAME.test(name))
    throw new MovaError("invalid_header", `the header name "${name}" is not valid`);
  const rendered = renderTemplate(template, resolve);
  addUnresolved(unresolved, rendered.unresolved);
  if (/[\r\n\0]/.test(rendered.text)) {
    throw new MovaError("invalid_header", `the value of header "${name}" contains a line break`);
  }
  return rendered.text;
}

function setHeader(headers: Record<string, string>, name: string, value: string): void {
  for (const existing of Object.keys(headers)) {
    if (existing.toLowerCase() === name.toLowerCase()) delete headers[existing];
  }
  headers[name] = value;
}

function readsSecret(...templates: Array<string | undefined>): boolean {
  return templates.some(
    (template) => template !== undefined && placeholdersOf(template).some((p) => p.startsWith("secrets.")),
  );
}

/**
 * `endpointResolve` renders the endpoint; `options.secretResolve` (else it) the headers,
 * authentication and parameters, the only places a secret may go.
 */
export function buildToolRequest(
  tool: Tool,
  endpointResolve: Resolver,
  options: { timeoutMs?: number | undefined; secretResolve?: Resolver } = {},
): BuiltToolRequest {
  const resolve = options.secretResolve ?? endpointResolve;
  const unresolved: string[] = [];
  const derivedSecrets: string[] = [];
  const method = tool.method.toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method)) {
    throw new MovaError(
      "invalid_method",
      `the method "${tool.method}" of tool "${tool.id}" is not supported`,
    );
  }
  const url = renderEndpoint(tool.endpoint, endpointResolve, unresolved);
  if (!URL.canParse(url)) {
    throw new MovaError("invalid_endpoint", `the endpoint of tool "${tool.id}" is not a valid URL`);
  }

  const headers: Record<string, string> = {};
  for (const [name, template] of Object.entries(tool.headers ?? {})) {
    setHeader(headers, name, renderHeader(name, template, resolve, unresolved));
  }

  const auth = tool.authentication ?? { type: "none" };
  switch (auth.type) {
    case "bearer": {
      const token = renderHeader("Authorization", auth.token ?? "", resolve, unresolved);
      setHeader(headers, "Authorization", `Bearer ${token}`);
      break;
    }
    case "api_key": {
      const name = auth.header?.trim() || DEFAULT_API_KEY_HEADER;
      setHeader(headers, name, renderHeader(name, auth.key ?? "", resolve, unresolved));
      break;
    }
    case "basic": {
      const username = renderHeader("Authorization", auth.username ?? "", resolve, unresolved);
      const password = renderHeader("Authorization", auth.password ?? "", resolve, unresolved);
      const credential = Buffer.from(`${username}:${password}`, "utf8").toString("base64");
      if (readsSecret(auth.username, auth.password)) derivedSecrets.push(credential);
      setHeader(headers, "Authorization", `Basic ${credential}`);
      break;
    }
    default:
      break;
  }

  const parameters = renderValue(tool.parameters ?? {}, resolve, unresolved) as Record<string, unknown>;
  const request: ToolRequest = { toolId: tool.id, method: method as HttpMethod, url, headers };
  if (method === "GET" || method === "DELETE") {
    const query: Record<string, string> = {};
    for (const [key, value] of Object.entries(parameters)) {
      if (value !== undefined) query[key] = stringifyValue(value);
    }
    if (Object.keys(query).length > 0) request.query = query;
  } else {
    request.body = parameters;
  }
  if (options.timeoutMs !== undefined) request.timeoutMs = options.timeoutMs;
  return { request, unresolved, derivedSecrets };
}
