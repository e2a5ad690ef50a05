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

/** A JSON object in one variable, checked against `schema`; `{}` when unset. */
const jsonObject = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .optional()
    .transform((value, context): z.infer<T> => {
      if (value === undefined || value.trim() === "") return schema.parse({});
      let json: unknown;
      try {
        json = JSON.parse(value);
      } catch {
        context.addIssue({ code: "custom", message: "not JSON" });
        return z.NEVER;
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        context.addIssue({ code: "custom", message: parsed.error.issues[0]?.message ?? "invalid" });
        return z.NEVER;
      }
      return parsed.data;
    });

const ModelPriceSchema = z.object({
  inputPerMillionUsd: z.number().min(0),
  outputPerMillionUsd: z.number().min(0),
});

/**
 * The prices known without settings: providers' list prices in US dollars per million tokens
 * (input, output) when this table was written; LLM_PRICES overrides or extends them. The
 * offline model costs nothing. A model in neither has an unknown cost, not a zero one.
 */
export const DEFAULT_LLM_PRICES: Readonly<Record<string, z.infer<typeof ModelPriceSchema>>> = {
  offline: { inputPerMillionUsd: 0, outputPerMillionUsd: 0 },
  "gpt-4o": { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 },
  "gpt-4o-mini": { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 },
  "gpt-4.1": { inputPerMillionUsd: 2, outputPerMillionUsd: 8 },
  "gpt-4.1-mini": { inputPerMillionUsd: 0.4, outputPerMillionUsd: 1.6 },
  "gpt-4.1-nano": { inputPerMillionUsd: 0.1, outputPerMillionUsd: 0.4 },
};

/** LLM_PRICES: a JSON object `{ "<model>": { "inputPerMillionUsd": n, "outputPerMillionUsd": n } }`. */
const prices = z
  .string()
  .optional()
  .transform((value, context) => {
    if (value === undefined || value.trim() === "") return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      context.addIssue({ code: "custom", message: "LLM_PRICES is not JSON" });
      return z.NEVER;
    }
    const table = z.record(z.string().min(1), ModelPriceSchema).safeParse(parsed);
    if (!table.success) {
      context.addIssue({
        code: "custom",
        message: "LLM_PRICES must map model names to { inputPerMillionUsd, outputPerMillionUsd }",
      });
      return z.NEVER;
    }
    return table.data;
  });

const ConfigSchema = z.object({
  // LLM
  LLM_API_KEY: z.string().optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENROUTER_API_KEY: z.string().optional(),
  LLM_BASE_URL: z.string().url().optional(),
  LLM_MODEL: z.string().default("gpt-4o-mini"),
  LLM_TIMEOUT_MS: int(30_000, 1),
  LLM_MAX_RETRIES: int(2),
  /** Per-model prices over DEFAULT_LLM_PRICES (see `prices` above). */
  LLM_PRICES: prices,
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
  /** The turns (messages of either side) a session's conversation keeps at most, for prompts' memory. */
  MEMORY_MAX_TURNS: int(40, 1),
  /** The UTF-8 bytes of turn contents a session's conversation keeps at most. */
  MEMORY_MAX_BYTES: int(16_384, 256),
  HISTORY_RETENTION_DAYS: int(90, 1),
  HISTORY_OUTPUT_MAX_BYTES: int(4096, 64),
  MAX_BODY_BYTES: int(262_144, 1024),
  /** Nesting bound of variables, session data, event payloads, feedback and tool responses. */
  MAX_INPUT_DEPTH: int(32, 2),
  /** Size bound (bytes of JSON) of variables, session data, event payloads and feedback. */
  MAX_INPUT_BYTES: int(65_536, 1024),
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
  /**
   * The key of signed callback URLs (`{callback.EVENT}`): HMAC-SHA256 over tenant, execution,
   * event and expiry. Unset: no callback URL is made and `POST /callbacks/{token}` refuses all.
   */
  CALLBACK_SECRET: z.string().min(32).optional(),
  /** The API's public base URL, which callback URLs start with (e.g. https://api.example.com). */
  PUBLIC_API_URL: z.string().url().optional(),
  /** A run handed to the runner and not advanced for this long is re-enqueued by the sweep (ms). */
  RUN_STALE_MS: int(300_000, 1_000),
  /** The local stack's sweep timer (deployed, the schedule is every minute). */
  SWEEP_INTERVAL_MS: int(60_000, 100),
  /** A run's checkpointed state above this fails the step with `state_too_large`. */
  MAX_RUN_STATE_BYTES: int(262_144, 1024),
  /** A run's live event stream keeps its last this-many events (the oldest are trimmed). */
  RUN_EVENTS_MAX_LEN: int(1000, 10),
  /** How long a run's event stream is kept after its last event (seconds). */
  RUN_EVENTS_TTL_SECONDS: int(3600, 60),
  // OpenTelemetry: runs export GenAI spans over OTLP/HTTP only when an endpoint is set.
  /** The OTLP/HTTP base URL (the exporter posts to `<endpoint>/v1/traces`); OTEL_EXPORTER_OTLP_ENDPOINT is read too. */
  OTLP_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  /** How long the end of a leg waits for its spans to be sent, at most. */
  OTLP_FLUSH_TIMEOUT_MS: int(2000, 1),
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
  /** Monthly budgets in US dollars: `{"<tenant>": 100}`; crossing one emits the `BudgetExceeded` metric. */
  TENANT_MONTHLY_BUDGETS: jsonObject(z.record(z.string().min(1), z.number().min(0))),
  /** Browser origins allowed to call the API (CORS), e.g. `https://app.example.com`; `*` for any. Empty: none. */
  CORS_ALLOWED_ORIGINS: csv,
  /**
   * The EventBridge sources the trigger accepts and the tenant each runs as: `source=tenant,…`.
   * Empty (the local stack): the tenant named in the event.
   */
  TRIGGER_SOURCES: csv,
  /**
   * Deployed: the SSM path under which each tenant's secrets live, one SecureString per
   * secret at `<path>/<tenant>/<NAME>`. Unset: the local sources below.
   */
  SECRETS_SSM_PATH: z
    .string()
    .regex(/^\/[A-Za-z0-9_./-]*$/)
    .optional(),
  /** How long a tenant's secrets read from SSM are cached (s). */
  SECRETS_MAX_AGE_SECONDS: int(300, 0),
  /** Locally: a directory of `<tenant>.json` secrets files (else `MOVA_SECRET_<TENANT>_<NAME>`). */
  MOVA_SECRETS_DIR: z.string().optional(),
});

export type Config = z.infer<typeof ConfigSchema> & {
  /** The LLM key: LLM_API_KEY, else OPENAI_API_KEY, else OPENROUTER_API_KEY. */
  llmApiKey: string | undefined;
  /** The OpenAI-compatible endpoint; OpenRouter's when only an OpenRouter key is set. */
  llmBaseUrl: string | undefined;
  /** DEFAULT_LLM_PRICES with LLM_PRICES over them: what a step record's `costUsd` is computed from. */
  llmPrices: Readonly<Record<string, z.infer<typeof ModelPriceSchema>>>;
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
  const llmPrices = { ...DEFAULT_LLM_PRICES, ...c.LLM_PRICES };
  return { ...c, llmApiKey, llmBaseUrl, llmPrices };
}

/**
 * The value of `secrets.NAME` for the CLI, which runs as its one user on a developer's machine:
 * the environment variable `MOVA_SECRET_NAME`. Services read each tenant's own secrets
 * (lib/adapters/secrets/).
 */
export function envSecrets(env: NodeJS.ProcessEnv = process.env): { get(name: string): string | undefined } {
  return {
    get(name: string) {
      if (!/^[A-Za-z0-9_]+$/.test(name)) return undefined;
      const value = env[`MOVA_SECRET_${name}`];
      return value === undefined || value === "" ? undefined : value;
    },
  };
}
