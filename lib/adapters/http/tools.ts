/**
 * The tool port: HTTP calls to third-party APIs with connection reuse (keep-alive agents),
 * a timeout per call, a response size cap, JSON or text bodies, and an SSRF guard that checks
 * the address actually connected to (the check runs inside the socket's DNS lookup, so a
 * name cannot resolve to a public address for the check and a private one for the connection).
 */
import { MovaError } from "../../errors.ts";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import type { Config } from "../../config.ts";
import type { ToolPort, ToolRequest, ToolResponse } from "../../ports.ts";
import { blockedAddressReason, isBlockedAddress } from "./address-guard.ts";
import { jsonDepth } from "../../core/input-bounds.ts";
import { IDLE_SOCKET_TIMEOUT_MS } from "./node-fetch.ts";

interface HttpToolsOptions {
  /** `host` or `host:port` (case-insensitive; IPv6 as `[::1]` or `[::1]:8080`) exempt from the address guard. */
  allowHosts?: string[];
  /** Per call, when the request gives none (default 10 s). */
  defaultTimeoutMs?: number;
  /** Largest response body accepted (default 1 MiB). */
  maxResponseBytes?: number;
  userAgent?: string;
}

const DEFAULT_TOOL_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1_048_576;
const DEFAULT_USER_AGENT = "mova-serverless/0.1";
/**
 * A JSON response nested deeper than this fails the call (`tool_response_too_deep`): the
 * value would become a variable that checkpoints and the session's Redis scripts (whose JSON
 * decoder stops at 1,000 levels) must walk.
 */
export const MAX_TOOL_RESPONSE_DEPTH = 64;
const MAX_IDLE_SOCKETS_PER_HOST = 4096;

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
/** Methods safe to resend when a pooled keep-alive socket turns out to have been closed by the server. */
const RESENDABLE_METHODS = new Set(["GET", "DELETE", "PUT"]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FORBIDDEN_HEADER_CHARS = /[\r\n\0]/;
/** Framing and hop-by-hop headers belong to the HTTP client; a document setting them could corrupt a reused connection. */
const CLIENT_MANAGED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
]);

export function createToolsFromConfig(config: Config): ToolPort {
  return createHttpTools({
    allowHosts: config.TOOL_ALLOW_HOSTS,
    defaultTimeoutMs: config.TOOL_TIMEOUT_MS,
    maxResponseBytes: config.TOOL_MAX_RESPONSE_BYTES,
  });
}

export function createHttpTools(options: HttpToolsOptions = {}): ToolPort {
  const allowList = parseAllowHosts(options.allowHosts ?? []);
  const defaultTimeoutMs = positiveOr(options.defaultTimeoutMs, DEFAULT_TOOL_TIMEOUT_MS);
  const maxResponseBytes = positiveOr(options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES);
  const userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
  // Node keeps at most 256 idle sockets per host by default and destroys the rest as a burst
  // of concurrent calls ends, so every burst above 256 reconnects (the concurrency benchmark
  // saw 744 new connections per 1000 concurrent runs). Idle sockets never outnumber the peak
  // of concurrent calls, and the server's keep-alive timeout closes them.
  // The timeout drops idle sockets before the server does (see IDLE_SOCKET_TIMEOUT_MS): after a
  // pause longer than the server's keep-alive, a burst of calls would otherwise meet hundreds
  // of sockets closed under it, more than the one resend of a stale socket can absorb.
  const agentOptions = {
    keepAlive: true,
    maxFreeSockets: MAX_IDLE_SOCKETS_PER_HOST,
    scheduling: "lifo" as const,
    timeout: IDLE_SOCKET_TIMEOUT_MS,
  };
  const agents = {
    "http:": new http.Agent(agentOptions),
    "https:": new https.Agent(agentOptions),
  };

  return {
    async call(request: ToolRequest, signal?: AbortSignal): Promise<ToolResponse> {
      if (signal?.aborted)
        throw new MovaError("cancelled", `tool ${request.toolId}: cancelled before it started`);
      const url = buildUrl(request);
      const headers = buildHeaders(request, url, userAgent);
      const payload = buildBody(request);
      if (payload !== undefined) {
        headers["content-length"] = String(payload.byteLength);
        if (!hasHeader(headers, "content-type")) headers["content-type"] = "application/json";
      }

      const hostname = bareHost(url.hostname);
      const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
      const allowed = isAllowed(allowList, hostname, port);
      if (!allowed && isIP(hostname)) {
        // A literal address is connected to without a lookup, so it is checked here, before any traffic.
        const reason = blockedAddressReason(hostname);
        if (reason) throw refused(request.toolId, hostname, reason);
      }

      const timeoutMs = positiveOr(request.timeoutMs, defaultTimeoutMs);
      const send = (mayResend: boolean): Promise<ToolResponse> =>
        sendOnce({
          request,
          url,
          hostname,
          port,
          headers,
          payload,
          agent: agents[url.protocol as "http:" | "https:"],
          // Allowed hosts go through the same lookup, unchecked, so there is one resolution path.
          lookup: guardedLookup(request.toolId, !allowed),
          timeoutMs,
          maxResponseBytes,
          signal,
        }).catch((error: unknown) => {
          if (mayResend && error instanceof StaleSocketError) return send(false);
          throw error instanceof StaleSocketError ? error.portError : error;
        });
      return send(RESENDABLE_METHODS.has(request.method));
    },
  };
}

interface SendOptions {
  request: ToolRequest;
  url: URL;
  hostname: string;
  port: number;
  headers: Record<string, string>;
  payload: Buffer | undefined;
  agent: http.Agent;
  lookup: LookupFunction;
  timeoutMs: number;
  maxResponseBytes: number;
  signal: AbortSignal | undefined;
}

/** A reset on a pooled socket before any response: the server had closed it while idle. */
class StaleSocketError extends Error {
  constructor(readonly portError: MovaError) {
    super(portError.message);
  }
}

function sendOnce(options: SendOptions): Promise<ToolResponse> {
  const { request, url, timeoutMs, maxResponseBytes, signal } = options;
  const toolId = request.toolId;
  return new Promise<ToolResponse>((resolve, reject) => {
    let settled = false;
    let response: IncomingMessage | undefined;
    let clientRequest: http.ClientRequest | undefined;

    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      // Destroying the socket (never returning it to the pool) is the only safe end for a call cut short.
      response?.destroy();
      clientRequest?.destroy();
      reject(error);
    };
    const succeed = (value: ToolResponse) => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve(value);
    };
    /** Fails a call whose response was read to the end: the connection stays in the pool. */
    const failAfterResponse = (error: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(error);
    };
    const onAbort = () => fail(new MovaError("cancelled", `tool ${toolId}: cancelled`));
    const timer = setTimeout(
      () =>
        fail(
          new MovaError("tool_timeout", `tool ${toolId}: no complete answer within ${timeoutMs} ms`, {
            retryable: true,
          }),
        ),
      timeoutMs,
    );
    signal?.addEventListener("abort", onAbort, { once: true });

    const transport = url.protocol === "https:" ? https : http;
    try {
      clientRequest = transport.request({
        protocol: url.protocol,
        hostname: options.hostname,
        port: options.port,
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers: options.headers,
        agent: options.agent,
        lookup: options.lookup,
      });
    } catch (error) {
      fail(toNetworkError(toolId, error));
      return;
    }
    const sent = clientRequest;

    sent.on("error", (error: Error) => {
      if (error instanceof MovaError) {
        fail(error);
        return;
      }
      const portError = toNetworkError(toolId, error);
      const code = (error as NodeJS.ErrnoException).code;
      if (!response && sent.reusedSocket && (code === "ECONNRESET" || code === "EPIPE")) {
        fail(new StaleSocketError(portError));
        return;
      }
      fail(portError);
    });

    sent.on("response", (res: IncomingMessage) => {
      response = res;
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 300;
      const declared = Number(res.headers["content-length"]);
      if (ok && Number.isFinite(declared) && declared > maxResponseBytes) {
        fail(tooLarge(toolId, maxResponseBytes, declared));
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      let overCap = false;
      res.on("data", (chunk: Buffer) => {
        received += chunk.byteLength;
        if (received > maxResponseBytes) {
          overCap = true;
          if (ok) fail(tooLarge(toolId, maxResponseBytes));
          else finishStatus();
          return;
        }
        chunks.push(chunk);
      });
      res.on("error", (error) => fail(toNetworkError(toolId, error)));
      res.on("aborted", () =>
        fail(
          new MovaError("tool_network", `tool ${toolId}: the connection closed mid-response`, {
            retryable: true,
          }),
        ),
      );
      res.on("end", () => {
        if (!ok) {
          finishStatus();
          return;
        }
        try {
          succeed({
            status,
            headers: flattenHeaders(res.headers),
            body: decodeBody(toolId, Buffer.concat(chunks), res.headers["content-type"]),
          });
        } catch (error) {
          failAfterResponse(error as Error);
        }
      });

      function finishStatus() {
        const retryable = status === 429 || status >= 500;
        const error = new MovaError(
          "tool_http_status",
          `tool ${toolId}: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ""}`,
          { retryable, status },
        );
        if (overCap) fail(error);
        else failAfterResponse(error);
      }
    });

    sent.end(options.payload);
  });
}

function buildUrl(request: ToolRequest): URL {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new MovaError("invalid_endpoint", `tool ${request.toolId}: the endpoint is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new MovaError(
      "invalid_endpoint",
      `tool ${request.toolId}: only http and https endpoints are allowed, not ${url.protocol}`,
    );
  }
  if (!url.hostname)
    throw new MovaError("invalid_endpoint", `tool ${request.toolId}: the endpoint has no host`);
  for (const [name, value] of Object.entries(request.query ?? {})) {
    if (value === undefined || value === null) continue;
    url.searchParams.append(name, typeof value === "string" ? value : String(value));
  }
  return url;
}

function buildHeaders(request: ToolRequest, url: URL, userAgent: string): Record<string, string> {
  const headers: Record<string, string> = {
    "user-agent": userAgent,
    accept: "application/json, text/*;q=0.9, */*;q=0.8",
  };
  for (const [name, rawValue] of Object.entries(request.headers ?? {})) {
    const value = typeof rawValue === "string" ? rawValue : String(rawValue);
    if (!HEADER_NAME.test(name) || FORBIDDEN_HEADER_CHARS.test(name)) {
      throw new MovaError(
        "invalid_header",
        `tool ${request.toolId}: header name ${JSON.stringify(name.slice(0, 64))} is not a valid HTTP header name`,
      );
    }
    if (FORBIDDEN_HEADER_CHARS.test(value)) {
      // The value is not echoed: it may hold a secret.
      throw new MovaError(
        "invalid_header",
        `tool ${request.toolId}: header ${name} contains a line break or NUL character`,
      );
    }
    const lower = name.toLowerCase();
    if (CLIENT_MANAGED_HEADERS.has(lower)) {
      throw new MovaError(
        "invalid_header",
        `tool ${request.toolId}: header ${name} is managed by the HTTP client and cannot be set`,
      );
    }
    headers[lower] = value;
  }
  // The tool's own Idempotency-Key (a document may set one) wins over the engine's.
  const key = request.idempotencyKey;
  if (key !== undefined && headers["idempotency-key"] === undefined && !FORBIDDEN_HEADER_CHARS.test(key)) {
    headers["idempotency-key"] = key;
  }
  if ((url.username || url.password) && !headers.authorization) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.authorization = `Basic ${Buffer.from(credentials).toString("base64")}`;
  }
  return headers;
}

function buildBody(request: ToolRequest): Buffer | undefined {
  if (!BODY_METHODS.has(request.method) || request.body === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(request.body);
  } catch (error) {
    throw new MovaError(
      "invalid_body",
      `tool ${request.toolId}: the body cannot be sent as JSON (${(error as Error).message})`,
    );
  }
  return text === undefined ? undefined : Buffer.from(text, "utf8");
}

function decodeBody(toolId: string, bytes: Buffer, contentType: string | undefined): unknown {
  const mediaType = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const text = decodeText(bytes, contentType);
  if (mediaType === "application/json" || mediaType.endsWith("+json")) {
    if (text.trim() === "") return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new MovaError(
        "tool_bad_response",
        `tool ${toolId}: the response says it is JSON but is not valid JSON`,
      );
    }
    if (jsonDepth(parsed, MAX_TOOL_RESPONSE_DEPTH) > MAX_TOOL_RESPONSE_DEPTH) {
      throw new MovaError(
        "tool_response_too_deep",
        `tool ${toolId}: the response is nested more than ${MAX_TOOL_RESPONSE_DEPTH} levels deep`,
      );
    }
    return parsed;
  }
  return text;
}

function decodeText(bytes: Buffer, contentType: string | undefined): string {
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? "")?.[1];
  if (charset) {
    try {
      return new TextDecoder(charset).decode(bytes);
    } catch {
      // An unknown charset falls back to UTF-8 rather than failing the call.
    }
  }
  return new TextDecoder("utf-8").decode(bytes);
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

interface AllowEntry {
  host: string;
  port: number | undefined;
}

function parseAllowHosts(entries: string[]): AllowEntry[] {
  const parsed: AllowEntry[] = [];
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      parsed.push({ host: bracketed[1] ?? "", port: bracketed[2] ? Number(bracketed[2]) : undefined });
      continue;
    }
    const withPort = /^([^:]+):(\d+)$/.exec(entry);
    if (withPort) {
      parsed.push({ host: trimDot(withPort[1] ?? ""), port: Number(withPort[2]) });
      continue;
    }
    // Anything else, a bare IPv6 address included, is a host without a port.
    parsed.push({ host: trimDot(entry), port: undefined });
  }
  return parsed;
}

function isAllowed(allowList: AllowEntry[], hostname: string, port: number): boolean {
  const host = trimDot(hostname.toLowerCase());
  return allowList.some((entry) => entry.host === host && (entry.port === undefined || entry.port === port));
}

function bareHost(hostname: string): string {
  return hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
}

function trimDot(host: string): string {
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

/** Resolves like the default lookup, then (when checking) refuses if any resolved address is a guarded one. */
function guardedLookup(toolId: string, check: boolean): LookupFunction {
  return ((
    hostname: string,
    options: { all?: boolean; family?: number },
    callback: (...args: unknown[]) => void,
  ) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) {
        callback(error);
        return;
      }
      // The refusal names neither the address nor its kind: what a name resolves to inside the
      // deployment's network is not for the document's author (or its users) to learn.
      if (check && addresses.some(({ address }) => isBlockedAddress(address))) {
        callback(refused(toolId, hostname));
        return;
      }
      if (options.all) {
        callback(null, addresses);
        return;
      }
      const first = addresses[0];
      if (!first) {
        callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }));
        return;
      }
      callback(null, first.address, first.family);
    });
  }) as unknown as LookupFunction;
}

/** `reason` only for a literal address, which the endpoint itself already shows. */
function refused(toolId: string, host: string, reason?: string): MovaError {
  const why = reason ? ` (${reason} address)` : "";
  return new MovaError(
    "endpoint_refused",
    `tool ${toolId}: the endpoint host ${host} is not allowed${why}; list it in TOOL_ALLOW_HOSTS to allow it`,
  );
}

function tooLarge(toolId: string, cap: number, declared?: number): MovaError {
  return new MovaError(
    "tool_response_too_large",
    `tool ${toolId}: the response is larger than the ${cap}-byte limit${declared === undefined ? "" : ` (${declared} bytes declared)`}`,
  );
}

const NOT_RETRYABLE_NETWORK_CODES = new Set(["ENOTFOUND", "ERR_INVALID_URL"]);

function toNetworkError(toolId: string, error: unknown): MovaError {
  if (error instanceof MovaError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ERR_INVALID_CHAR" || code === "ERR_INVALID_HTTP_TOKEN") {
    return new MovaError("invalid_header", `tool ${toolId}: a header has a character HTTP does not allow`);
  }
  const certificate =
    typeof code === "string" &&
    (code.includes("CERT") || code.startsWith("ERR_TLS") || code.startsWith("ERR_SSL"));
  // Node's messages name the address connected to ("connect ECONNREFUSED 10.0.3.7:443"):
  // what a host resolves to inside the deployment's network is not the caller's to learn.
  const message = withoutAddresses(error instanceof Error ? error.message : String(error));
  return new MovaError(
    "tool_network",
    `tool ${toolId}: ${message}${code && !message.includes(code) ? ` (${code})` : ""}`,
    {
      retryable: !certificate && !NOT_RETRYABLE_NETWORK_CODES.has(code ?? ""),
    },
  );
}

function positiveOr(value: number | undefined, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.ceil(value) : fallback;
}

const IPV4_WITH_PORT = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g;
const IPV6_WITH_PORT = /\[?\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b\]?(?::\d+)?/gi;

/** A network error's message with every IP address (and port) replaced. */
export function withoutAddresses(message: string): string {
  return message.replace(IPV4_WITH_PORT, "[address]").replace(IPV6_WITH_PORT, "[address]");
}
