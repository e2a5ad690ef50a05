/** The learning loop's routes: feedback, versions, comparisons, usage (one list for the handler to register). */
import type { DocumentLoader } from "../services/document-loader.ts";
import type { ApiDeps } from "./deps.ts";
import type { RouteSpec } from "./route.ts";
import { compareRoutes } from "./routes-compare.ts";
import { feedbackRoutes } from "./routes-feedback.ts";
import { recommendationRoutes } from "./routes-recommendations.ts";
import { routingRoutes } from "./routes-routing.ts";
import { usageRoutes } from "./routes-usage.ts";
import { versionRoutes } from "./routes-versions.ts";

export function learningRoutes(deps: ApiDeps, loader: DocumentLoader): RouteSpec[] {
  return [
    ...feedbackRoutes(deps),
    ...versionRoutes(deps),
    ...compareRoutes(deps),
    ...usageRoutes(deps),
    ...recommendationRoutes(deps, loader),
    ...routingRoutes(deps),
  ];
}
