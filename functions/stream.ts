/**
 * The stream function: GET /executions/{id}/events as server-sent events, behind a Lambda
 * function URL in response-streaming mode (API Gateway HTTP APIs cannot stream). The URL has
 * no IAM auth: the handler checks the same API keys as the API. Wiring only: see
 * lib/wiring/stream.ts and lib/http/run-events-stream.ts.
 *
 * `awslambda` is the global the Lambda Node.js runtime provides (no import, no package):
 * `streamifyResponse` marks the handler as streaming, so the runtime calls it with the event,
 * the response stream and the context; `HttpResponseStream.from` sends the status code and the
 * headers before the first byte of the body.
 */
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import type { Writable } from "node:stream";
import { loadConfig } from "../lib/config.ts";
import { buildStreamHandler } from "../lib/wiring/stream.ts";

declare const awslambda: {
  streamifyResponse(
    handler: (event: APIGatewayProxyEventV2, responseStream: Writable, context: Context) => Promise<void>,
  ): unknown;
  HttpResponseStream: {
    from(stream: Writable, metadata: { statusCode: number; headers: Record<string, string> }): Writable;
  };
};

let streamHandler: ReturnType<typeof buildStreamHandler> | undefined;

export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  streamHandler ??= buildStreamHandler(loadConfig());
  await streamHandler(
    event,
    (prelude) => awslambda.HttpResponseStream.from(responseStream, prelude),
    context,
  );
});
