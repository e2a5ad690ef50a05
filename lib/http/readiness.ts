/**
 * `GET /ready`: whether each backing service the API needs is configured and answers, by
 * name: `ok`, `missing` (not configured) or `unavailable` (configured, not answering within
 * a second). 200 when all are `ok`, else 503. It names dependencies, never endpoints,
 * credentials or error messages. `/health` stays a liveness answer that calls nothing.
 */
import type { ApiDeps } from "./deps.ts";

export type DependencyState = "ok" | "missing" | "unavailable";

export interface Readiness {
  status: "ready" | "not_ready";
  dependencies: Record<string, DependencyState>;
}

const PROBE_TIMEOUT_MS = 1_000;
/** Ids no tenant can have (tenants and names never start with `_`): a read that finds nothing. */
const PROBE_ID = "__ready__";

async function probe(call: () => Promise<unknown>): Promise<DependencyState> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"unavailable">((resolve) => {
    timer = setTimeout(() => resolve("unavailable"), PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([call().then(() => "ok" as const), timeout]);
  } catch {
    return "unavailable";
  } finally {
    clearTimeout(timer);
  }
}

export async function checkReadiness(deps: ApiDeps): Promise<Readiness> {
  const { config } = deps;
  const redisConfigured = Boolean(config.UPSTASH_REDIS_REST_URL && config.UPSTASH_REDIS_REST_TOKEN);
  const [dynamodb, redis] = await Promise.all([
    probe(() => deps.documents.get(PROBE_ID, PROBE_ID)),
    redisConfigured
      ? probe(() => deps.sessions.get(PROBE_ID, PROBE_ID))
      : Promise.resolve<DependencyState>("missing"),
  ]);
  const dependencies: Record<string, DependencyState> = {
    dynamodb,
    redis,
    analysisQueue: config.ANALYSIS_QUEUE_URL ? "ok" : "missing",
    runsQueue: config.RUNS_QUEUE_URL ? "ok" : "missing",
    llm: deps.llm.offline ? "missing" : "ok",
  };
  const ready = Object.values(dependencies).every((state) => state === "ok");
  return { status: ready ? "ready" : "not_ready", dependencies };
}
