/**
 * A protocol's flow as a laid-out graph: the document's steps are the nodes, with each step's
 * figures (success rate, p50/p95 latency, whether it is a failure point); the transitions are
 * the edges, weighted by how many runs took them in the window:
 * - the strategy patterns give, for each path of step ids, the completed runs that took it:
 *   every transition of the path was taken that many times by completed runs;
 * - a run that failed on the way took the transitions up to its failure, which no pattern
 *   lists: an edge that is the only way into its step carries the step's records (every
 *   record of the step came in through it), when those are more.
 * A transition the document declares that no analysed run took is kept with weight 0, so the
 * whole flow shows.
 *
 * No DOM here: dagre places the nodes and routes the edges, and the page draws the result.
 */
import { Graph, layout } from "@dagrejs/dagre";

export interface DocumentStep {
  id: string;
  action?: string;
  next_step?: string;
  next_step_id?: string;
  on_error?: string;
  else_step?: string;
  /** A parallel step's branches. */
  steps?: unknown;
  conditions?: unknown;
}

export interface StepFigures {
  step: string;
  action: string;
  total: number;
  succeeded: number;
  failed: number;
  successRate: number | null;
  latency: { p50: number | null; p95: number | null };
}

export interface PatternFigures {
  type: string;
  path?: string[];
  step?: string;
  figures: Record<string, unknown>;
}

export interface FlowNode {
  id: string;
  action: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Step records analysed (0: no run reached the step). */
  total: number;
  successRate: number | null;
  p50: number | null;
  p95: number | null;
  /** A failure-point pattern names the step, or some of its records failed. */
  failurePoint: boolean;
  failureRate: number | null;
}

export interface FlowEdge {
  from: string;
  to: string;
  /** Runs that took the transition in the window. */
  taken: number;
  points: Array<{ x: number; y: number }>;
}

export interface FlowGraph {
  nodes: FlowNode[];
  edges: FlowEdge[];
  width: number;
  height: number;
}

export const NODE_WIDTH = 190;
export const NODE_HEIGHT = 58;

/** How many completed runs took each transition, summed over the strategy patterns' paths. */
export function transitionCounts(patterns: readonly PatternFigures[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const pattern of patterns) {
    if (pattern.type !== "strategy" || !pattern.path) continue;
    const taken = Number(pattern.figures.runs ?? 0);
    for (let i = 0; i + 1 < pattern.path.length; i++) {
      const key = edgeKey(pattern.path[i]!, pattern.path[i + 1]!);
      counts.set(key, (counts.get(key) ?? 0) + taken);
    }
  }
  return counts;
}

const SEPARATOR = "\u0000";
const edgeKey = (from: string, to: string) => `${from}${SEPARATOR}${to}`;

/** The step ids a step's conditions lead to (`next_step_id` of a rule, `default_next_step_id`). */
function conditionTargets(conditions: unknown): string[] {
  if (!conditions || typeof conditions !== "object") return [];
  const group = conditions as { rules?: unknown; default_next_step_id?: unknown };
  const rules = Array.isArray(conditions) ? conditions : Array.isArray(group.rules) ? group.rules : [];
  const targets: string[] = [];
  if (typeof group.default_next_step_id === "string") targets.push(group.default_next_step_id);
  for (const rule of rules as Array<{ next_step_id?: unknown; sub_conditions?: unknown }>) {
    if (typeof rule?.next_step_id === "string") targets.push(rule.next_step_id);
    targets.push(...conditionTargets(rule?.sub_conditions));
  }
  return targets;
}

/**
 * The transitions the document declares: `next_step` (else the following step, unless the
 * step ends the run or the protocol's flow is explicit), `on_error`, a condition's `else_step`
 * and the steps its rules name, a parallel step's branches.
 */
function declaredTransitions(steps: readonly DocumentStep[], explicitFlow: boolean): Array<[string, string]> {
  const ids = new Set(steps.map((s) => s.id));
  const edges: Array<[string, string]> = [];
  steps.forEach((step, index) => {
    if (step.action === "end") return;
    const next = step.next_step ?? step.next_step_id ?? (explicitFlow ? undefined : steps[index + 1]?.id);
    const targets = [next, step.on_error, step.else_step, ...conditionTargets(step.conditions)];
    if (step.action === "parallel" && Array.isArray(step.steps)) targets.push(...step.steps.map(String));
    for (const target of new Set(targets)) {
      if (target !== undefined && ids.has(target)) edges.push([step.id, target]);
    }
  });
  return edges;
}

export function flowGraph(input: {
  steps: readonly DocumentStep[];
  /** The protocol's `flow`: `explicit` (a step without `next_step` ends the run) or sequential. */
  flow?: string;
  statistics: readonly StepFigures[];
  patterns: readonly PatternFigures[];
}): FlowGraph {
  const figures = new Map(input.statistics.map((s) => [s.step, s]));
  const failurePoints = new Map<string, number | null>();
  for (const pattern of input.patterns) {
    if (pattern.type === "failure_point" && pattern.step)
      failurePoints.set(pattern.step, (pattern.figures.failureRate as number | null) ?? null);
  }

  // The document's steps in order, then any step only the history knows (an older version's).
  const ids: string[] = input.steps.map((s) => s.id);
  const actions = new Map(input.steps.map((s) => [s.id, s.action ?? ""]));
  for (const s of input.statistics) {
    if (actions.has(s.step)) continue;
    ids.push(s.step);
    actions.set(s.step, s.action);
  }

  const counts = transitionCounts(input.patterns);
  for (const [from, to] of declaredTransitions(input.steps, input.flow === "explicit")) {
    const key = edgeKey(from, to);
    if (!counts.has(key)) counts.set(key, 0);
  }

  const graph = new Graph();
  graph.setGraph({ rankdir: "TB", nodesep: 30, ranksep: 46, marginx: 10, marginy: 10 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const id of ids) graph.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const key of counts.keys()) {
    const [from, to] = key.split(SEPARATOR) as [string, string];
    for (const id of [from, to]) {
      if (graph.hasNode(id)) continue;
      ids.push(id);
      graph.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });
    }
    graph.setEdge(from, to);
  }
  layout(graph);

  const nodes: FlowNode[] = ids.map((id) => {
    const placed = graph.node(id);
    const stat = figures.get(id);
    const failed = (stat?.failed ?? 0) > 0;
    return {
      id,
      action: actions.get(id) ?? "",
      x: placed.x,
      y: placed.y,
      width: placed.width,
      height: placed.height,
      total: stat?.total ?? 0,
      successRate: stat?.successRate ?? null,
      p50: stat?.latency.p50 ?? null,
      p95: stat?.latency.p95 ?? null,
      failurePoint: failurePoints.has(id) || failed,
      failureRate:
        failurePoints.get(id) ??
        (stat && stat.succeeded + stat.failed > 0 ? stat.failed / (stat.succeeded + stat.failed) : null),
    };
  });
  const waysIn = new Map<string, number>();
  for (const key of counts.keys()) {
    const to = key.split(SEPARATOR)[1]!;
    waysIn.set(to, (waysIn.get(to) ?? 0) + 1);
  }
  const edges: FlowEdge[] = [...counts].map(([key, completed]) => {
    const [from, to] = key.split(SEPARATOR) as [string, string];
    const entered = waysIn.get(to) === 1 && from !== to ? (figures.get(to)?.total ?? 0) : 0;
    return { from, to, taken: Math.max(completed, entered), points: graph.edge(from, to).points ?? [] };
  });
  const size = graph.graph();
  return { nodes, edges, width: size.width ?? 0, height: size.height ?? 0 };
}
