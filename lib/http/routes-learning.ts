/** The learning loop's routes: feedback, versions, comparisons (one list for the handler to register). */
import type { ApiDeps } from "./deps.ts";
import type { RouteSpec } from "./route.ts";
import { compareRoutes } from "./routes-compare.ts";
import { feedbackRoutes } from "./routes-feedback.ts";
import { versionRoutes } from "./routes-versions.ts";

export function learningRoutes(deps: ApiDeps): RouteSpec[] {
  return [...feedbackRoutes(deps), ...versionRoutes(deps), ...compareRoutes(deps)];
}
