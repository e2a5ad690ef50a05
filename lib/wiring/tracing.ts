/**
 * X-Ray tracing with Powertools Tracer. Deployed (Lambda's active tracing, serverless.yml),
 * each invocation gets a `## handler` subsegment annotated with the cold start and the service,
 * and outbound HTTPS calls (the LLM, tools, Upstash) become subsegments (Tracer patches
 * http/https on construction). Outside Lambda the tracer is disabled and this costs nothing.
 */
import { Tracer } from "@aws-lambda-powertools/tracer";

let tracer: Tracer | undefined;

/** Wraps a Lambda handler in its own subsegment. */
export function traced<E, C, R>(serviceName: string, handler: (event: E, context: C) => Promise<R>) {
  return async (event: E, context: C): Promise<R> => {
    tracer ??= new Tracer({ serviceName });
    if (!tracer.isTracingEnabled()) return handler(event, context);
    const segment = tracer.getSegment();
    const subsegment = segment?.addNewSubsegment(`## ${process.env._HANDLER ?? serviceName}`);
    if (subsegment) tracer.setSegment(subsegment);
    tracer.annotateColdStart();
    tracer.addServiceNameAnnotation();
    try {
      return await handler(event, context);
    } catch (error) {
      tracer.addErrorAsMetadata(error as Error);
      throw error;
    } finally {
      subsegment?.close();
      if (segment) tracer.setSegment(segment);
    }
  };
}
