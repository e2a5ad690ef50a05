/**
 * The stream function: GET /executions/{id}/events as server-sent events, behind a Lambda
 * function URL in response-streaming mode (API Gateway HTTP APIs cannot stream). The URL has
 * no IAM auth: the handler checks the same API keys as the API. Wiring only: see
 * lib/wiring/stream.ts and lib/http/run-events-stream.ts.
 *
 * `awslambda` is the global the Lambda Node.js runtime provides (no import, no package):
 * `streamifyResponse` marks the handler as streaming, so the runtime calls it with the event,
 * the response stream and the context; `HttpResponseStream.from` sends the status code and the
 * headers before the first byte of the body. Outside that runtime (a plain `import` of the
 * bundle, as the cold-start benchmark does) there is no such function: the module still loads,
 * and its handler refuses to run.
 */
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import type { Writable } from "node:stream";
import { loadDeployedConfig } from "../lib/wiring/deployed-config.ts";
import { buildStreamHandler } from "../lib/wiring/stream.ts";

type StreamingLambda = (
  event: APIGatewayProxyEventV2,
  responseStream: Writable,
  context: Context,
) => Promise<void>;

interface AwsLambdaGlobal {
  streamifyResponse(handler: StreamingLambda): StreamingLambda;
  HttpResponseStream: {
    from(stream: Writable, metadata: { statusCode: number; headers: Record<string, string> }): Writable;
  };
}

// Other modules put an `awslambda` object of their own on the global (the invoke store of the
// Powertools): only one with streamifyResponse is the runtime's.
const global = (globalThis as unknown as { awslambda?: Partial<AwsLambdaGlobal> }).awslambda;
const runtime = typeof global?.streamifyResponse === "function" ? (global as AwsLambdaGlobal) : undefined;

let streamHandler: ReturnType<typeof buildStreamHandler> | undefined;

const streaming: StreamingLambda = async (event, responseStream, context) => {
  if (!runtime)
    throw new Error("the stream function runs only in the Lambda Node.js runtime (response streaming)");
  streamHandler ??= buildStreamHandler(await loadDeployedConfig());
  await streamHandler(event, (prelude) => runtime.HttpResponseStream.from(responseStream, prelude), context);
};

export const handler = runtime ? runtime.streamifyResponse(streaming) : streaming;
