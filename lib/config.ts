/**
 * Every setting, read from the environment in one place. The defaults make the local stack
 * work with no settings at all.
 */
import * as z from "zod";
import { MovaError } from "./errors.ts";

const csv = z
  .string()
  .optional()
  .transform((value) =>
    (value ?? "")
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  );

const int = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);

const ConfigSchema = z.object({
  // LLM
  LLM_API_KEY: z.string().optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENROUTER_API_KEY: z.string().optional(),
  LLM_BASE_URL: z.string().url().optional(),
  LLM_MODEL: z.string().default("gpt-4o-mini"),
  LLM_TIMEOUT_MS: int(30_000, 1),
  LLM_MAX_RETRIES: int(2),
  // Tools
  TOOL_ALLOW_HOSTS: csv,
  TOOL_TIMEOUT_MS: int(10_000, 1),
  TOOL_MAX_RESPONSE_BYTES: int(1_048_576, 1),
  // Runtime
  AWS_REGION: z.string().default("us-east-1"),
  DOCUMENTS_TABLE: z.string().default("mova-documents"),
  EXECUTIONS_TABLE: z.string().default("mova-executions"),
  PATTERNS_TABLE: z.string().default("mova-patterns"),
  ANALYSIS_QUEUE_URL: z.string().optional(),
  ANALYSIS_PRIORITY_QUEUE_URL: z.string().optional(),
  /** Where `POST /analysis/runs` queues runs for the batch analysis. */
  ANALYSIS_RUN_QUEUE_URL: z.string().optional(),
  UPSTASH_REDIS_REST_URL: z.string().optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().optional(),
  SESSION_TTL_SECONDS: int(3600, 1),
  HISTORY_RETENTION_DAYS: int(90, 1),
  HISTORY_OUTPUT_MAX_BYTES: int(4096, 64),
  MAX_BODY_BYTES: int(262_144, 1024),
  RUN_DEADLINE_MS: int(25_000, 1),
  /**
   * How long POST /executions advances a run inline before it hands it to the runner (202);
   * asked between steps, so keep it under RUN_DEADLINE_MS by a step's length.
   */
  SYNC_BUDGET_MS: int(20_000, 0),
  /** The runs queue: runs handed to the runner (functions/runner). */
  RUNS_QUEUE_URL: z.string().optional(),
  /** The runner stops advancing a run when its invocation has less than this left (ms). */
  RUNNER_MARGIN_MS: int(30_000, 0),
  /** How long a runner's lease on a run lasts; renewed between steps when it nears its end. */
  RUN_LEASE_MS: int(120_000, 1_000),
  /** A run's checkpointed state above this fails the step with `state_too_large`. */
  MAX_RUN_STATE_BYTES: int(262_144, 1024),
  /** A run's live event stream keeps its last this-many events (the oldest are trimmed). */
  RUN_EVENTS_MAX_LEN: int(1000, 10),
  /** How long a run's event stream is kept after its last event (seconds). */
  RUN_EVENTS_TTL_SECONDS: int(3600, 60),
  /** GET /executions/{id}/events: a comment line after this long without an event (ms). */
  RUN_EVENTS_HEARTBEAT_MS: int(15_000, 100),
  /** GET /executions/{id}/events: the longest wait between two reads of an idle stream (ms). */
  RUN_EVENTS_POLL_MS: int(500, 10),
  /** GET /executions/{id}/events: one response lasts at most this long; the client resumes with Last-Event-ID. */
  RUN_EVENTS_MAX_CONNECTION_MS: int(840_000, 1_000),
  MOVA_API_KEYS: z.string().optional(),
  MOVA_DEV_API_KEY: z.string().optional(),
  ANALYSIS_WINDOW_DAYS: int(30, 1),
  /** The local stack's batch-analysis timer (deployed, the EventBridge schedule decides). Default daily. */
  ANALYSIS_SCHEDULE_INTERVAL_MS: int(86_400_000, 1_000),
  LOG_LEVEL: z.string().default("INFO"),
});

export type Config = z.infer<typeof ConfigSchema> & {
  /** The LLM key: LLM_API_KEY, else OPENAI_API_KEY, else OPENROUTER_API_KEY. */
  llmApiKey: string | undefined;
  /** The OpenAI-compatible endpoint; OpenRouter's when only an OpenRouter key is set. */
  llmBaseUrl: string | undefined;
};

/** Reads the configuration from an environment (the process's by default). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
    throw new MovaError("invalid_config", `invalid configuration: ${issues}`);
  }
  const c = parsed.data;
  const llmApiKey = c.LLM_API_KEY || c.OPENAI_API_KEY || c.OPENROUTER_API_KEY || undefined;
  const onlyOpenRouter = !c.LLM_API_KEY && !c.OPENAI_API_KEY && Boolean(c.OPENROUTER_API_KEY);
  const llmBaseUrl = c.LLM_BASE_URL ?? (onlyOpenRouter ? "https://openrouter.ai/api/v1" : undefined);
  return { ...c, llmApiKey, llmBaseUrl };
}

/** The value of `secrets.NAME`: locally the environment variable `MOVA_SECRET_NAME`. */
export function envSecrets(env: NodeJS.ProcessEnv = process.env): { get(name: string): string | undefined } {
  return {
    get(name: string) {
      if (!/^[A-Za-z0-9_]+$/.test(name)) return undefined;
      const value = env[`MOVA_SECRET_${name}`];
      return value === undefined || value === "" ? undefined : value;
    },
  };
}
