/**
 * OpenTelemetry export of runs: with OTLP_ENDPOINT set, a run through the API (local stack,
 * the fake OpenAI server, a tool on loopback) sends its spans to an OTLP/HTTP receiver on
 * loopback (a plain node:http server taking POST /v1/traces as the exporter's JSON); a receiver
 * that is down changes nothing of the run.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, lambdaContext, startApiFixture, v2Event } from "../support/api-fixture.ts";
import { streamedCompletion as completion } from "../support/fake-openai.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
  status?: { code?: number; message?: string };
}

/** An OTLP/HTTP receiver: every span posted to /v1/traces, with its resource's service name. */
async function startReceiver() {
  const spans: Array<OtlpSpan & { service: string }> = [];
  const server: Server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      if (request.method === "POST" && request.url === "/v1/traces") {
        const payload = JSON.parse(body) as {
          resourceSpans: Array<{
            resource: { attributes: OtlpSpan["attributes"] };
            scopeSpans: Array<{ spans: OtlpSpan[] }>;
          }>;
        };
        for (const resourceSpans of payload.resourceSpans) {
          const service = String(
            attribute({ attributes: resourceSpans.resource.attributes } as OtlpSpan, "service.name"),
          );
          for (const scope of resourceSpans.scopeSpans)
            for (const span of scope.spans) spans.push({ ...span, service });
        }
        response.writeHead(200, { "content-type": "application/json" }).end("{}");
        return;
      }
      response.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An OTLP attribute's value, whatever its type (ints come as strings in OTLP JSON). */
function attribute(span: Pick<OtlpSpan, "attributes">, key: string): unknown {
  const found = span.attributes.find((entry) => entry.key === key);
  if (!found) return undefined;
  const value = found.value;
  if ("intValue" in value) return Number(value.intValue);
  return value.stringValue ?? value.doubleValue ?? value.boolValue;
}

const SECRET_VALUE = "s3cr3t-token-value-for-traces";

const document = (tools: string) => ({
  version: "2.2",
  protocols: [
    {
      name: "answer",
      steps: [
        { id: "ask", action: "prompt", prompt: "Say something about {topic}", output: "reply" },
        { id: "lookup", action: "tool_api", tool_api_id: "orders", output: "order" },
        { id: "done", action: "end", response_template: "{reply} / {order.state}" },
      ],
    },
  ],
  tools: [
    {
      id: "orders",
      endpoint: `${tools}/orders`,
      method: "POST",
      headers: { authorization: "Bearer {secrets.ORDERS_TOKEN}" },
      parameters: { topic: "{topic}" },
    },
  ],
});

let receiver: Awaited<ReturnType<typeof startReceiver>>;
let api: ApiFixture;

beforeAll(async () => {
  receiver = await startReceiver();
  api = await startApiFixture({
    OTLP_ENDPOINT: receiver.url,
    MOVA_SECRET_dev_ORDERS_TOKEN: SECRET_VALUE,
  });
  api.tools.route("POST", "/orders", { status: 200, body: { state: "shipped" } });
  const put = await api.call("PUT", "/documents/traced", { body: document(api.tools.url) });
  expect(put.status).toBeLessThan(300);
}, 60_000);

afterAll(async () => {
  await api?.close();
  await receiver?.close();
});

describe("run traces over OTLP", () => {
  it("exports a span per leg, step, model call and tool call, with GenAI attributes and parent links", async () => {
    api.llm.queue(completion("hello there", "fake-model-2025"));
    const run = await api.call("POST", "/executions", {
      body: { document: "traced", protocol: "answer", variables: { topic: "parcels" } },
    });
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body.status, JSON.stringify(run.body)).toBe("completed");
    const executionId = run.body.executionId as string;
    // The leg waits for its spans (within OTLP_FLUSH_TIMEOUT_MS) before it answers.
    const spans = receiver.spans.filter((span) => span.traceId === traceOf(executionId));
    const byName = (name: string) => {
      const found = spans.filter((span) => span.name === name);
      expect(found, name).toHaveLength(1);
      return found[0]!;
    };
    const root = byName("invoke_agent traced");
    expect(root.parentSpanId ?? "").toBe("");
    expect(root.service).toBe("mova-api");
    expect(attribute(root, "gen_ai.operation.name")).toBe("invoke_agent");
    expect(attribute(root, "mova.run.status")).toBe("completed");
    expect(attribute(root, "mova.protocol")).toBe("answer");

    const ask = byName("step ask");
    const lookup = byName("step lookup");
    const done = byName("step done");
    for (const step of [ask, lookup, done]) expect(step.parentSpanId).toBe(root.spanId);
    expect(attribute(ask, "mova.step.action")).toBe("prompt");

    const chat = byName("chat fake-model-2025");
    expect(chat.parentSpanId).toBe(ask.spanId);
    expect(chat.kind).toBe(3); // SPAN_KIND_CLIENT
    expect(attribute(chat, "gen_ai.operation.name")).toBe("chat");
    expect(attribute(chat, "gen_ai.system")).toBe("openai");
    expect(attribute(chat, "gen_ai.request.model")).toBe("fake-model-2025");
    expect(attribute(chat, "gen_ai.response.model")).toBe("fake-model-2025");
    // The fake server's usage: 7 prompt tokens, 3 completion tokens.
    expect(attribute(chat, "gen_ai.usage.input_tokens")).toBe(7);
    expect(attribute(chat, "gen_ai.usage.output_tokens")).toBe(3);

    const tool = byName("execute_tool orders");
    expect(tool.parentSpanId).toBe(lookup.spanId);
    expect(attribute(tool, "gen_ai.operation.name")).toBe("execute_tool");
    expect(attribute(tool, "gen_ai.tool.name")).toBe("orders");
    expect(attribute(tool, "http.response.status_code")).toBe(200);

    // Children sit within their parents' time.
    for (const child of [chat, tool]) {
      const parent = child === chat ? ask : lookup;
      expect(BigInt(child.startTimeUnixNano) >= BigInt(parent.startTimeUnixNano)).toBe(true);
      expect(BigInt(child.endTimeUnixNano) <= BigInt(parent.endTimeUnixNano)).toBe(true);
    }
    // The tool's secret reached the tool, never a span.
    expect(
      api.tools.requests.some((request) => request.headers.authorization === `Bearer ${SECRET_VALUE}`),
    ).toBe(true);
    expect(JSON.stringify(spans)).not.toContain(SECRET_VALUE);
  });

  it("a failed step's span is an error with the step's code", async () => {
    api.tools.queue("POST", "/orders", { status: 503, body: "down" });
    api.llm.queue(completion("hi"));
    const run = await api.call("POST", "/executions", {
      body: { document: "traced", protocol: "answer", variables: { topic: "x" } },
    });
    expect(run.body.status).toBe("failed");
    const spans = receiver.spans.filter((span) => span.traceId === traceOf(run.body.executionId));
    const lookup = spans.find((span) => span.name === "step lookup")!;
    expect(lookup.status?.code).toBe(2); // STATUS_CODE_ERROR
    expect(attribute(lookup, "error.type")).toBe(run.body.error.code);
    const root = spans.find((span) => span.name === "invoke_agent traced")!;
    expect(root.status?.code).toBe(2);
    expect(attribute(root, "mova.run.status")).toBe("failed");
  });

  it("a receiver that is down changes nothing of the run", async () => {
    const down = await startReceiver();
    await down.close();
    const handler = api.handlerWith({ OTLP_ENDPOINT: down.url, OTLP_FLUSH_TIMEOUT_MS: "300" });
    api.llm.queue(completion("still fine"));
    const response = await handler(
      v2Event("POST", "/executions", {
        headers: { authorization: `Bearer ${api.devKey}` },
        body: { document: "traced", protocol: "answer", variables: { topic: "y" } },
      }),
      lambdaContext,
    );
    const body = JSON.parse(String((response as { body?: string }).body));
    expect(body.status).toBe("completed");
    expect(body.output).toBe("still fine / shipped");
  });
});

/** The trace of a run: the root span named for it. */
function traceOf(executionId: string): string | undefined {
  return receiver.spans.find(
    (span) => span.name.startsWith("invoke_agent") && attribute(span, "mova.execution_id") === executionId,
  )?.traceId;
}
