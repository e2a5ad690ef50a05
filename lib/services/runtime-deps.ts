/**
 * What the services that run protocols need (the API's routes, the event trigger): the stores,
 * the publisher, the engine's ports and a logger. lib/wiring/runtime.ts builds it from the
 * configuration; tests build it around local endpoints.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type {
  Clock,
  DocumentStore,
  EventPublisher,
  HistoryStore,
  LlmPort,
  RunCheckpointStore,
  RunControlStore,
  RunEventStream,
  RunQueue,
  RunTraceExporter,
  TenantSecretsPort,
  ToolPort,
} from "../ports.ts";
import type { Idempotency } from "../ports.ts";

export interface RuntimeDeps {
  documents: DocumentStore;
  history: HistoryStore;
  publisher: EventPublisher;
  /** Run checkpoints (Redis): every durable run's state and lease. */
  checkpoints: RunCheckpointStore;
  /** The runs queue: runs handed to the runner. */
  runQueue: RunQueue;
  /** Wake-ups, cancel requests and callback claims of runs (Redis); absent: none of those. */
  runControl?: RunControlStore;
  /** Signed callback URLs (`{callback.EVENT}`): CALLBACK_SECRET and PUBLIC_API_URL. */
  callbacks?: { secret?: string | undefined; baseUrl?: string | undefined };
  /** RUN_STALE_MS: a run handed to the runner and not advanced this long is re-enqueued by the sweep. */
  runStaleMs?: number;
  /** Runs' live events (Redis streams); absent: runs publish none. */
  runEvents?: RunEventStream;
  /** Runs' OpenTelemetry spans (OTLP_ENDPOINT); absent: runs export none. */
  runTraces?: RunTraceExporter;
  idempotency: Idempotency;
  llm: LlmPort;
  tools: ToolPort;
  secrets: TenantSecretsPort;
  clock: Clock;
  logger: Logger;
}
