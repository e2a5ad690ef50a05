/**
 * GET /executions/{id}/events: a run's live events as server-sent events. Deployed, a Lambda
 * function URL in response-streaming mode serves it (functions/stream.ts; API Gateway HTTP APIs
 * cannot stream); locally, the gateway does (infra/local/gateway.ts). Both call this handler
 * with the function URL's event (payload v2) and a way to open the response, so the same code
 * runs in both.
 *
 * The same API keys as the API: no key or an unknown one is 401, another tenant's or an
 * unknown execution 404, a malformed `Last-Event-ID` 400 `invalid_event_id`. Then 200
 * `text/event-stream`: each event with its `id:` (the stream's), `event:` (its type) and
 * `data:` (its JSON), a comment as heartbeat, until the run ends or suspends. A follower that
 * resumes after the run's end (its `Last-Event-ID` the last there is) gets 204, which tells an
 * EventSource to stop reconnecting.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import * as z from "zod";
import type { Config } from "../config.ts";
import { MovaError } from "../errors.ts";
import type { Clock, HistoryStore, RunEventStream } from "../ports.ts";
import { type FollowItem, followRun, openFollow } from "../services/follow-run.ts";
import { authenticatedTenant, parseApiKeys } from "./auth.ts";
import { errorResponse, toApiFailure } from "./errors.ts";
import { ExecutionId } from "./schemas.ts";

/** The status and headers, sent before the body (Lambda's HttpResponseStream prelude). */
export interface StreamPrelude {
  statusCode: number;
  headers: Record<string, string>;
}

/** The response body as a writable: Lambda's response stream, or node:http's response. */
export interface ResponseBody {
  write(chunk: string): boolean;
  end(chunk?: string): void;
  once?(event: "drain" | "close" | "error", listener: () => void): unknown;
  readonly destroyed?: boolean;
}

/** Opens the response with its prelude; the body is written after. */
export type OpenResponse = (prelude: StreamPrelude) => ResponseBody;

export type StreamingHandler = (
  event: APIGatewayProxyEventV2,
  open: OpenResponse,
  context?: { awsRequestId?: string; getRemainingTimeInMillis?: () => number },
) => Promise<void>;

/**
 * How /openapi.json describes this route: it is not in the API's route table (another function
 * serves it deployed), so its operation is written here, beside the handler it describes.
 */
export const RUN_EVENTS_OPENAPI_PATH = "/executions/{id}/events";
const { $schema: _dialect, ...executionIdSchema } = z.toJSONSchema(ExecutionId);
export const runEventsOperation = {
  operationId: "followExecutionEvents",
  summary:
    "A run's live events as server-sent events (status, step_started, step_finished, token); deployed, served by the stream function's URL",
  parameters: [
    { name: "id", in: "path", required: true, schema: executionIdSchema },
    {
      name: "Last-Event-ID",
      in: "header",
      required: false,
      description: "resume after this event (an EventSource sends it when it reconnects)",
      schema: { type: "string" },
    },
  ],
  responses: {
    200: {
      description: "`text/event-stream` until the run ends or suspends; heartbeats as comments",
      content: { "text/event-stream": { schema: { type: "string" } } },
    },
    204: { description: "nothing more will come: the run ended and the follower has seen its last event" },
    400: { description: "invalid_event_id: a malformed Last-Event-ID" },
    401: { description: "unauthorized: missing or unknown API key" },
    404: { description: "not_found: an unknown execution or another tenant's" },
  },
} as const;

export interface RunEventsHandlerDeps {
  history: HistoryStore;
  runEvents: RunEventStream;
  clock: Clock;
  logger: Logger;
  config: Pick<
    Config,
    | "MOVA_API_KEYS"
    | "MOVA_DEV_API_KEY"
    | "RUN_EVENTS_HEARTBEAT_MS"
    | "RUN_EVENTS_POLL_MS"
    | "RUN_EVENTS_MAX_CONNECTION_MS"
  >;
}

/** The path this handler serves; the gateway routes it here. */
export const RUN_EVENTS_PATH = /^\/executions\/([^/]+)\/events\/?$/;

/** Time kept back from the invocation's remaining time to end the response cleanly. */
const END_MARGIN_MS = 5_000;
/** What an EventSource waits before it reconnects (ms). */
const RETRY_MS = 2_000;

export function createRunEventsHandler(deps: RunEventsHandlerDeps): StreamingHandler {
  const keys = parseApiKeys(deps.config);
  const follow = { history: deps.history, events: deps.runEvents, clock: deps.clock };

  return async (event, open, context) => {
    const requestId = event.requestContext?.requestId ?? context?.awsRequestId ?? randomUUID();
    const logger = deps.logger.createChild({
      persistentKeys: { requestId, route: "GET /executions/{id}/events" },
    });
    const headers: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
    const fail = (error: unknown) => {
      const failure = toApiFailure(error);
      if (failure.status >= 500)
        logger.error("request failed", { status: failure.status, error: error as Error });
      else logger.info("request rejected", { status: failure.status, code: failure.code });
      const response = errorResponse(failure, { "x-request-id": requestId });
      open({ statusCode: failure.status, headers: response.headers as Record<string, string> }).end(
        response.body as string,
      );
    };

    let opened: Awaited<ReturnType<typeof openFollow>>;
    let tenant: string;
    let executionId: string;
    let after: string | undefined;
    try {
      const method = event.requestContext?.http?.method ?? "GET";
      const match = RUN_EVENTS_PATH.exec(event.rawPath ?? "");
      if (!match) throw Object.assign(new Error("no such route"), { statusCode: 404 });
      if (method !== "GET") throw Object.assign(new Error("method not allowed"), { statusCode: 405 });
      tenant = authenticatedTenant(keys, headers);
      let id: string;
      try {
        id = decodeURIComponent(match[1] as string);
      } catch {
        throw new MovaError("invalid_request", "path parameter id is not valid URL encoding");
      }
      if (!ExecutionId.safeParse(id).success)
        throw new MovaError("invalid_request", "invalid path parameter id");
      executionId = id;
      after = headers["last-event-id"]?.trim() || undefined;
      opened = await openFollow(tenant, executionId, after, follow);
    } catch (error) {
      fail(error);
      return;
    }
    logger.appendPersistentKeys({ tenant, executionId });
    if (opened.done) {
      open({ statusCode: 204, headers: { "x-request-id": requestId } }).end();
      return;
    }

    const body = open({
      statusCode: 200,
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
        "x-request-id": requestId,
      },
    });
    const stop = new AbortController();
    body.once?.("close", () => stop.abort());
    body.once?.("error", () => stop.abort());
    const remaining = context?.getRemainingTimeInMillis?.();
    const maxConnectionMs = Math.max(
      1_000,
      Math.min(
        deps.config.RUN_EVENTS_MAX_CONNECTION_MS,
        (remaining ?? Number.POSITIVE_INFINITY) - END_MARGIN_MS,
      ),
    );
    let sent = 0;
    try {
      await write(body, `retry: ${RETRY_MS}\n: following ${executionId}\n\n`);
      for await (const item of followRun(
        { tenant, executionId, record: opened.record, signal: stop.signal, ...(after ? { after } : {}) },
        follow,
        {
          pollMs: deps.config.RUN_EVENTS_POLL_MS,
          heartbeatMs: deps.config.RUN_EVENTS_HEARTBEAT_MS,
          maxConnectionMs,
        },
      )) {
        if (stop.signal.aborted || body.destroyed) break;
        await write(body, frame(item));
        if (item.kind === "event") sent += 1;
      }
    } catch (error) {
      // The status is sent: the failure goes as an `error` event, and the client resumes later.
      const failure = toApiFailure(error);
      logger.error("following the run failed", { code: failure.code, error: error as Error });
      if (!body.destroyed)
        await write(
          body,
          `event: error\ndata: ${JSON.stringify({ code: failure.code, message: failure.message })}\n\n`,
        ).catch(() => undefined);
    } finally {
      if (!body.destroyed) body.end();
      logger.info("run followed", { events: sent, aborted: stop.signal.aborted });
    }
  };
}

/** One item as SSE text. JSON holds no raw line break, so `data:` is one line. */
export function frame(item: FollowItem): string {
  switch (item.kind) {
    case "heartbeat":
      return ": heartbeat\n\n";
    case "expired":
      return ": reconnect with Last-Event-ID to go on\n\n";
    case "event":
      return `${item.id !== undefined ? `id: ${item.id}\n` : ""}event: ${item.event.type}\ndata: ${JSON.stringify(item.event)}\n\n`;
  }
}

/** Writes a chunk, waiting for the body to drain when its buffer is full. */
async function write(body: ResponseBody, chunk: string): Promise<void> {
  if (body.write(chunk) || !body.once) return;
  await new Promise<void>((resolve) => {
    body.once?.("drain", resolve);
    body.once?.("close", resolve);
  });
}
