/**
 * The local API Gateway: a node:http server that turns each request into an API Gateway
 * HTTP API payload v2 event, calls the real Lambda handler with a Lambda-like context, and
 * writes the handler's result back. Nothing of the handler is bypassed or re-implemented.
 * Paths of a streaming function (deployed: a function URL in response-streaming mode, which
 * gets the same payload v2 event) go to that handler instead, which writes the response as it
 * goes: the status and headers first, then each chunk as soon as it is written.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from "aws-lambda";
import type { StreamingHandler } from "../../lib/http/run-events-stream.ts";

type V2Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;

interface GatewayOptions {
  handler: V2Handler;
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** The Lambda timeout the context reports (ms). */
  timeoutMs?: number;
  functionName?: string;
  /** Paths served by a streaming function instead of `handler`. */
  streaming?: Array<{ path: RegExp; handler: StreamingHandler; functionName?: string; timeoutMs?: number }>;
}

export interface Gateway {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

const TEXT_TYPES =
  /^(text\/|application\/(json|[\w.+-]*\+json|x-www-form-urlencoded|xml|yaml|x-yaml|javascript))/i;

function isTextContentType(contentType: string | undefined): boolean {
  return contentType === undefined || contentType === "" || TEXT_TYPES.test(contentType);
}

function toV2Event(request: IncomingMessage, body: Buffer, requestId = randomUUID()): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? "/", "http://localhost");
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    if (key === "cookie") {
      for (const item of (Array.isArray(value) ? value.join("; ") : value).split(";")) {
        if (item.trim()) cookies.push(item.trim());
      }
      continue;
    }
    headers[key] = Array.isArray(value) ? value.join(",") : value;
  }
  const queryStringParameters: Record<string, string> = {};
  for (const key of new Set(url.searchParams.keys())) {
    queryStringParameters[key] = url.searchParams.getAll(key).join(",");
  }
  const method = (request.method ?? "GET").toUpperCase();
  const now = Date.now();
  const isText = isTextContentType(headers["content-type"]);
  const event: APIGatewayProxyEventV2 = {
    version: "2.0",
    routeKey: "$default",
    rawPath: url.pathname,
    rawQueryString: url.search.startsWith("?") ? url.search.slice(1) : url.search,
    headers,
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName: headers.host ?? "localhost",
      domainPrefix: (headers.host ?? "localhost").split(".")[0] ?? "localhost",
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? "127.0.0.1",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId,
      routeKey: "$default",
      stage: "$default",
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    isBase64Encoded: false,
  };
  if (cookies.length > 0) event.cookies = cookies;
  if (Object.keys(queryStringParameters).length > 0) event.queryStringParameters = queryStringParameters;
  if (body.byteLength > 0) {
    event.body = isText ? body.toString("utf8") : body.toString("base64");
    event.isBase64Encoded = !isText;
  }
  return event;
}

function lambdaContext(requestId: string, timeoutMs: number, functionName: string): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Writes a v2 result the way API Gateway does (a bare object or string is a 200 JSON body). */
function writeResult(response: ServerResponse, result: APIGatewayProxyResultV2): void {
  if (
    typeof result === "string" ||
    result === null ||
    typeof result !== "object" ||
    !("statusCode" in result)
  ) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(typeof result === "string" ? result : JSON.stringify(result));
    return;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  if (result.cookies && result.cookies.length > 0) headers["set-cookie"] = result.cookies;
  response.writeHead(result.statusCode ?? 200, headers);
  if (result.body === undefined) response.end();
  else response.end(result.isBase64Encoded ? Buffer.from(result.body, "base64") : result.body);
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const timeoutMs = options.timeoutMs ?? 29_000;
  const functionName = options.functionName ?? "api";
  const sockets = new Set<Socket>();

  const server = createServer(async (request, response) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const requestId = randomUUID();
      const event = toV2Event(request, Buffer.concat(chunks), requestId);
      const streaming = options.streaming?.find((route) => route.path.test(event.rawPath));
      if (streaming) {
        await streaming.handler(
          event,
          (prelude) => {
            response.writeHead(prelude.statusCode, prelude.headers);
            response.flushHeaders();
            return response;
          },
          // Deployed, the stream function's timeout is 900 s.
          lambdaContext(requestId, streaming.timeoutMs ?? 900_000, streaming.functionName ?? "stream"),
        );
        if (!response.writableEnded) response.end();
        return;
      }
      const result = await options.handler(event, lambdaContext(requestId, timeoutMs, functionName));
      writeResult(response, result);
    } catch (error) {
      // What API Gateway answers when the function itself fails.
      process.stderr.write(
        `gateway: handler failed: ${error instanceof Error ? error.stack : String(error)}\n`,
      );
      if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ message: "Internal Server Error" }));
    }
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host === "0.0.0.0" ? "localhost" : host}:${port}`,
    port,
    server,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
