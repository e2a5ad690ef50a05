/** What the API handler needs: the stores, the engine's ports and the settings. Tests and the local stack inject these. */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Config } from "../config.ts";
import type { Clock, LlmPort, SecretsPort, ToolPort } from "../engine/types.ts";
import type { DocumentStore, EventPublisher, HistoryStore, SessionStore } from "../runtime/ports.ts";
import type { IdempotencyStore } from "../service/idempotency-store.ts";
import type { ApiAnalysisDeps } from "./routes-analysis.ts";

export interface ApiDeps {
  config: Pick<
    Config,
    | "MAX_BODY_BYTES"
    | "RUN_DEADLINE_MS"
    | "HISTORY_OUTPUT_MAX_BYTES"
    | "MOVA_API_KEYS"
    | "MOVA_DEV_API_KEY"
    | "SESSION_TTL_SECONDS"
  >;
  documents: DocumentStore;
  sessions: SessionStore;
  history: HistoryStore;
  publisher: EventPublisher;
  idempotency: IdempotencyStore;
  llm: LlmPort;
  tools: ToolPort;
  secrets: SecretsPort;
  clock: Clock;
  logger: Logger;
  /** The patterns, recommendations and analysis-run routes; absent: those routes are not served. */
  analysis?: ApiAnalysisDeps;
}
