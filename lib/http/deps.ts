/** What the API handler needs: the stores, the engine's ports and the settings. Tests and the local stack inject these. */
import type { Config } from "../config.ts";
import type { RoutingStore, SessionStore } from "../ports.ts";
import type { RuntimeDeps } from "../services/runtime-deps.ts";
import type { AnalysisRun, AnalysisRunStore } from "../ports.ts";
import type { PatternStore, ScoreStore } from "../ports.ts";
import type { PriceTable } from "../analysis/cost.ts";

export interface ApiDeps extends RuntimeDeps {
  config: Pick<
    Config,
    | "MAX_BODY_BYTES"
    | "MAX_INPUT_DEPTH"
    | "MAX_INPUT_BYTES"
    | "RUN_DEADLINE_MS"
    | "SYNC_BUDGET_MS"
    | "RUN_LEASE_MS"
    | "HISTORY_OUTPUT_MAX_BYTES"
    | "MOVA_API_KEYS"
    | "MOVA_DEV_API_KEY"
    | "SESSION_TTL_SECONDS"
    | "MEMORY_MAX_TURNS"
    | "MEMORY_MAX_BYTES"
    | "UPSTASH_REDIS_REST_URL"
    | "UPSTASH_REDIS_REST_TOKEN"
    | "ANALYSIS_QUEUE_URL"
    | "RUNS_QUEUE_URL"
    | "CORS_ALLOWED_ORIGINS"
  >;
  /** Told of every answer with a 5xx status (handled failures too): deployed, an EMF metric that an alarm watches. */
  onServerError?: (code: string) => void;
  sessions: SessionStore;
  /** The documents' traffic splits; absent: new sessions and executions take the latest version. */
  routing?: RoutingStore;
  /** The patterns, recommendations and analysis-run routes; absent: those routes are not served. */
  analysis?: ApiAnalysisDeps;
  /**
   * The dashboard page's script (an esbuild bundle of dashboard/): deployed, the file
   * `npm run build` writes beside the API's bundle; locally, bundled on first request.
   * Absent: GET /dashboard/app.js is a 404.
   */
  dashboardScript?: () => Promise<string>;
}

/** The patterns, recommendations and analysis-run routes' stores and the run queue. */
interface ApiAnalysisDeps {
  patterns: PatternStore;
  runs: AnalysisRunStore;
  /** Stores a queued run and hands it to the batch analysis (lib/services/batch-analysis.ts). */
  requestRun(
    tenant: string,
    request: { document?: string; protocol?: string; timeRangeDays: number },
  ): Promise<AnalysisRun>;
  /** Default window of POST /analysis/runs (ANALYSIS_WINDOW_DAYS). */
  defaultRunDays: number;
  /** Feedback and judgements on executions; absent: POST /executions/{id}/feedback is not served. */
  scores?: ScoreStore;
  /** The price table (LLM_PRICES over the default list prices); absent: every cost is unknown. */
  prices?: PriceTable;
}
