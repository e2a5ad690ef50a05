/**
 * A lean `fetch` for the `openai` SDK (its `fetch` client option), over `node:http`/`node:https`
 * with keep-alive agents. On Node 24, Node's built-in `fetch` (undici behind web streams) costs
 * 233 µs of CPU per call here against 88 µs for this transport (bench/transport-cost.ts), and
 * 45–65 % more client CPU per execution at 100 and 1000 concurrent runs
 * (bench/concurrency-transports.ts); one Node process running many executions at once is bound
 * by that CPU.
 *
 * What it does not do, because the SDK's JSON calls never need it: it sends string and byte
 * bodies only (streams, FormData and Blobs — file uploads — go to the built-in `fetch`), it
 * reads the whole body before resolving (the SDK's timeout then covers the body too) except
 * for an event stream (`text/event-stream`, a `stream: true` completion), whose body is handed
 * over as it arrives, and it does not follow redirects (a 3xx reaches the SDK as a failed
 * response, so credentials are never replayed to another host). Aborts reject with an
 * `AbortError`, as `fetch` does, which the SDK maps to a timeout or a user abort; socket errors
 * keep their `code` (ECONNREFUSED...).
 */
import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import {
  brotliDecompressSync,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  gunzipSync,
  inflateSync,
} from "node:zlib";

interface NodeFetchOptions {
  /** Idle keep-alive sockets kept per host (default 4096: a burst of concurrent calls keeps its connections). */
  maxFreeSockets?: number;
}

type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * Without an agent `timeout`, Node ignores the server's `Keep-Alive: timeout=N` hint and keeps
 * idle sockets until the server closes them, so a call after a pause of N seconds can be sent
 * on a socket the server is closing (ECONNRESET). With one, an idle socket is dropped after
 * this long or a second before the server's hint, whichever is sooner (undici's default too).
 * It does not limit a call in progress: the agent's timeout only closes idle sockets.
 */
export const IDLE_SOCKET_TIMEOUT_MS = 4000;

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

export function createNodeFetch(options: NodeFetchOptions = {}): FetchFunction {
  // LIFO (Node's default, kept explicit) hands out the most recently used socket: under a steady trickle the pool stays small
  // and warm, and the sockets the server is about to time out are the ones left idle.
  const agentOptions = {
    keepAlive: true,
    maxFreeSockets: options.maxFreeSockets ?? 4096,
    scheduling: "lifo" as const,
    timeout: IDLE_SOCKET_TIMEOUT_MS,
  };
  const agents = { "http:": new http.Agent(agentOptions), "https:": new https.Agent(agentOptions) };

  return (input, init = {}) => {
    const body = init.body;
    if (
      body != null &&
      typeof body !== "string" &&
      !(body instanceof Uint8Array) &&
      !(body instanceof ArrayBuffer)
    )
      return globalThis.fetch(input, init);
    const url =
      typeof input === "string" ? new URL(input) : input instanceof URL ? input : new URL(input.url);
    const transport = url.protocol === "https:" ? https : url.protocol === "http:" ? http : undefined;
    if (!transport) return Promise.reject(new TypeError(`fetch: unsupported protocol ${url.protocol}`));
    const headers = plainHeaders(init.headers);
    const payload =
      body == null
        ? undefined
        : typeof body === "string"
          ? Buffer.from(body)
          : Buffer.from(body as ArrayBuffer);
    if (payload) headers["content-length"] = String(payload.byteLength);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortError(signal));

    return new Promise<Response>((resolve, reject) => {
      const request = transport.request(url, {
        method: (init.method ?? "GET").toUpperCase(),
        headers,
        agent: agents[url.protocol as "http:" | "https:"],
        ...(signal ? { signal } : {}),
      });
      request.on("error", (error) => reject(signal?.aborted ? abortError(signal) : error));
      request.on("response", (response) => {
        const status = response.statusCode ?? 0;
        if (isEventStream(response.headers["content-type"]) && !NULL_BODY_STATUSES.has(status)) {
          // A streamed completion: its events reach the SDK as the server writes them.
          resolve(streamingResponse(url.href, response, signal));
          return;
        }
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("error", (error) => reject(signal?.aborted ? abortError(signal) : error));
        response.on("aborted", () => reject(signal?.aborted ? abortError(signal) : connectionReset()));
        response.on("end", () => {
          try {
            const raw = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
            resolve(
              new BufferedResponse(
                url.href,
                status,
                response.statusMessage ?? "",
                responseHeaders(response.rawHeaders),
                NULL_BODY_STATUSES.has(status) ? null : decode(raw, response.headers["content-encoding"]),
              ) as unknown as Response,
            );
          } catch (error) {
            reject(error);
          }
        });
      });
      request.end(payload);
    });
  };
}

/**
 * The part of `Response` a JSON client reads — status, headers, `text()`, `json()`,
 * `arrayBuffer()` — over a body already in memory; `body` (a web stream) is made only if asked.
 */
class BufferedResponse {
  readonly ok: boolean;
  readonly redirected = false;
  readonly type = "basic";
  bodyUsed = false;
  #bytes: Buffer | null;
  #stream: ReadableStream<Uint8Array> | undefined;

  constructor(
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    readonly headers: Headers,
    bytes: Buffer | null,
  ) {
    this.ok = status >= 200 && status < 300;
    this.#bytes = bytes;
  }

  /**
   * The same stream on every access, as `fetch` gives. Unlike `fetch`, reading the stream does
   * not set `bodyUsed`: the bytes stay in memory, so the SDK's JSON reads never depend on it.
   */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#bytes === null) return null;
    this.#stream ??= new Response(this.#bytes).body as ReadableStream<Uint8Array>;
    return this.#stream;
  }

  #take(): Buffer {
    if (this.bodyUsed) throw new TypeError("Body is unusable: Body has already been read");
    this.bodyUsed = true;
    return this.#bytes ?? Buffer.alloc(0);
  }

  async text(): Promise<string> {
    return this.#take().toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.#take().toString("utf8"));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#take();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer());
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.arrayBuffer()], { type: this.headers.get("content-type") ?? "" });
  }

  clone(): BufferedResponse {
    if (this.bodyUsed) throw new TypeError("Response.clone: Body has already been consumed");
    return new BufferedResponse(
      this.url,
      this.status,
      this.statusText,
      new Headers(this.headers),
      this.#bytes,
    );
  }
}

function plainHeaders(source: RequestInit["headers"]): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!source) return headers;
  if (source instanceof Headers) {
    source.forEach((value, name) => {
      headers[name] = value;
    });
  } else if (Array.isArray(source)) {
    for (const [name, value] of source)
      if (name !== undefined && value !== undefined) headers[name.toLowerCase()] = value;
  } else {
    for (const name of Object.keys(source)) {
      const value = (source as Record<string, string | undefined>)[name];
      if (value !== undefined) headers[name.toLowerCase()] = value;
    }
  }
  return headers;
}

function responseHeaders(raw: string[]): Headers {
  const headers = new Headers();
  for (let index = 0; index + 1 < raw.length; index += 2)
    headers.append(raw[index] as string, raw[index + 1] as string);
  return headers;
}

function isEventStream(contentType: string | undefined): boolean {
  return contentType?.split(";")[0]?.trim().toLowerCase() === "text/event-stream";
}

/**
 * A response whose body is read as it arrives (decoded as `decode` would). A connection that
 * breaks, or an abort, mid-body errors the body's stream, as `fetch`'s does.
 */
function streamingResponse(
  url: string,
  response: http.IncomingMessage,
  signal: AbortSignal | undefined,
): Response {
  const decoder = streamDecoder(response.headers["content-encoding"]);
  const source: Readable = decoder ? response.pipe(decoder) : response;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let ended = false;
      const fail = (error: Error) => {
        if (ended) return;
        ended = true;
        controller.error(signal?.aborted ? abortError(signal) : error);
      };
      source.on("data", (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        // Read no further than the reader asks for.
        if ((controller.desiredSize ?? 1) <= 0) source.pause();
      });
      source.on("end", () => {
        if (ended) return;
        ended = true;
        controller.close();
      });
      source.on("error", fail);
      if (decoder) response.on("error", fail);
      response.on("aborted", () => fail(connectionReset()));
    },
    pull() {
      source.resume();
    },
    cancel() {
      response.destroy();
    },
  });
  const streamed = new Response(body, {
    status: response.statusCode ?? 0,
    statusText: response.statusMessage ?? "",
    headers: responseHeaders(response.rawHeaders),
  });
  Object.defineProperty(streamed, "url", { value: url });
  return streamed;
}

function streamDecoder(encoding: string | undefined) {
  const name = encoding?.trim().toLowerCase();
  if (name === "gzip" || name === "x-gzip") return createGunzip();
  if (name === "deflate") return createInflate();
  if (name === "br") return createBrotliDecompress();
  return undefined;
}

/** The SDK asks for no compression, but a server may compress anyway; `fetch` would decode it. */
function decode(bytes: Buffer, encoding: string | undefined): Buffer {
  if (!encoding || encoding === "identity" || bytes.byteLength === 0) return bytes;
  const name = encoding.trim().toLowerCase();
  if (name === "gzip" || name === "x-gzip") return gunzipSync(bytes);
  if (name === "deflate") return inflateSync(bytes);
  if (name === "br") return brotliDecompressSync(bytes);
  return bytes;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === "AbortError") return reason;
  return new DOMException("This operation was aborted", "AbortError");
}

function connectionReset(): Error {
  return Object.assign(new Error("the connection closed before the response ended"), { code: "ECONNRESET" });
}
