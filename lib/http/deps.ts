/** What the API handler needs: the stores, the engine's ports and the settings. Tests and the local stack inject these. */
import type { Config } from "../config.ts";
import type { SessionStore } from "../core/ports.ts";
import type { RuntimeDeps } from "../services/runtime-deps.ts";
import type { ApiAnalysisDeps } from "./routes-analysis.ts";

export interface ApiDeps extends RuntimeDeps {
  config: Pick<
    Config,
    | "MAX_BODY_BYTES"
    | "RUN_DEADLINE_MS"
    | "HISTORY_OUTPUT_MAX_BYTES"
    | "MOVA_API_KEYS"
    | "MOVA_DEV_API_KEY"
    | "SESSION_TTL_SECONDS"
  >;
  sessions: SessionStore;
  /** The patterns, recommendations and analysis-run routes; absent: those routes are not served. */
  analysis?: ApiAnalysisDeps;
}
