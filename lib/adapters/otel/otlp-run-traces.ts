/**
 * Runs' traces to an OTLP/HTTP endpoint with the OpenTelemetry JS SDK: a tracer provider of its
 * own (never the process's global one), a batch span processor (spans are sent in the
 * background, never on a run's path) and the OTLP/HTTP exporter (JSON). `flush` waits for the
 * queued spans at most `flushTimeoutMs`; an endpoint that is down or slow costs a leg that bound
 * and a warning, never its outcome.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import { type Context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { RunTraceExporter, TraceSpan } from "../../ports.ts";

export interface OtlpRunTracesOptions {
  /** The OTLP/HTTP base URL; spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  serviceName: string;
  flushTimeoutMs: number;
  /** How long the batch processor waits before it sends what it holds. */
  scheduledDelayMs?: number;
  logger?: Pick<Logger, "warn">;
}

export function createOtlpRunTraces(options: OtlpRunTracesOptions): RunTraceExporter & {
  shutdown(): Promise<void>;
} {
  const exporter = new OTLPTraceExporter({
    url: `${options.endpoint.replace(/\/+$/, "")}/v1/traces`,
    timeoutMillis: options.flushTimeoutMs,
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        scheduledDelayMillis: options.scheduledDelayMs ?? 1000,
        exportTimeoutMillis: options.flushTimeoutMs,
      }),
    ],
  });
  const tracer = provider.getTracer("mova-serverless");
  return {
    export(root) {
      try {
        emit(tracer, root, ROOT_CONTEXT, SpanKind.INTERNAL);
      } catch (error) {
        options.logger?.warn("a run's spans could not be made", { error: describe(error) });
      }
    },
    async flush() {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), options.flushTimeoutMs);
      });
      try {
        const outcome = await Promise.race([provider.forceFlush().then(() => "sent" as const), bound]);
        if (outcome === "timeout")
          options.logger?.warn("run spans were not sent within the bound", {
            boundMs: options.flushTimeoutMs,
          });
      } catch (error) {
        options.logger?.warn("run spans could not be sent", { error: describe(error) });
      } finally {
        clearTimeout(timer);
      }
    },
    shutdown: () => provider.shutdown(),
  };
}

/** Starts the span, its children under it, then ends it at its recorded time. */
function emit(tracer: Tracer, span: TraceSpan, parent: Context, kind: SpanKind): void {
  const otelSpan = tracer.startSpan(
    span.name,
    { kind, startTime: span.startMs, attributes: span.attributes },
    parent,
  );
  const inside = trace.setSpan(parent, otelSpan);
  for (const child of span.children) {
    // A model call leaves the process: a client span, as the GenAI conventions have it.
    const childKind =
      child.attributes["gen_ai.operation.name"] === "chat" ? SpanKind.CLIENT : SpanKind.INTERNAL;
    emit(tracer, child, inside, childKind);
  }
  if (span.error !== undefined) otelSpan.setStatus({ code: SpanStatusCode.ERROR, message: span.error });
  otelSpan.end(span.endMs);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
