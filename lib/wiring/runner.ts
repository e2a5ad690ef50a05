/** The runner function's wiring: the runtime's adapters, the document loader, the runner's handler. */
import type { Config } from "../config.ts";
import { createDocumentLoader } from "../services/document-loader.ts";
import { createRunnerHandler } from "../services/runner.ts";
import { type BuildRuntimeDepsOptions, buildRuntimeDeps } from "./runtime.ts";
import { createRedisFromConfig, createRedisSessionStore } from "../adapters/redis/session-store.ts";

/** What functions/runner.ts and the local stack's runs poller call. */
export function buildRunnerHandler(config: Config, options: BuildRuntimeDepsOptions = {}) {
  const deps = buildRuntimeDeps(config, { serviceName: "mova-runner", ...options });
  return createRunnerHandler({
    ...deps,
    loader: createDocumentLoader(deps.documents),
    leaseMs: config.RUN_LEASE_MS,
    marginMs: config.RUNNER_MARGIN_MS,
    memoryBounds: { maxTurns: config.MEMORY_MAX_TURNS, maxBytes: config.MEMORY_MAX_BYTES },
    // A session's run reads the session's data and profile (the same Redis as the checkpoints).
    ...(config.UPSTASH_REDIS_REST_URL && config.UPSTASH_REDIS_REST_TOKEN
      ? {
          sessions: createRedisSessionStore({
            redis: createRedisFromConfig(config),
            ttlSeconds: config.SESSION_TTL_SECONDS,
          }),
        }
      : {}),
  });
}
