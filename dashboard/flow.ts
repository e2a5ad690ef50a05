/**
 * A protocol's flow as a laid-out graph: the document's steps are the nodes, with each step's
 * figures (success rate, p50/p95 latency, whether it is a failure point); the transitions are
 * the edges, weighted by how often runs took them. The weights come from the strategy
 * patterns (each a path of step ids and how many runs took it); a transition the document
 * declares that no analysed run took is kept with weight 0, so the whole flow shows.
 *
 * No DOM here: dagre places the nodes and routes the edges, and the page draws the result.
 */
import { Graph, layout } from "@dagrejs/dagre";

export interface DocumentStep {
  id: string;
  action?: string;
  next_step?: string;
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

/** How often each transition was taken, summed over the strategy patterns' paths. */
export function transitionCounts(patterns: readonly PatternFigures[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const pattern of patterns) {
    if (pattern.type !== "strategy" || !pattern.path) continue;
    const taken = Number(pattern.figures.taken ?? pattern.figures.runs ?? 0);
    for (let i = 0; i + 1 < pattern.path.length; i++) {
      const key = edgeKey(pattern.path[i]!, pattern.path[i + 1]!);
      counts.set(key, (counts.get(key) ?? 0) + taken);
    }
  }
  return counts;
}

const SEPARATOR = "\u0000";
const edgeKey = (from: string, to: string) => `${from}${SEPARATOR}${to}`;

/** The transitions the document declares: `next_step`, else the following step (an `end` step has none). */
function declaredTransitions(steps: readonly DocumentStep[]): Array<[string, string]> {
  const ids = new Set(steps.map((s) => s.id));
  const edges: Array<[string, string]> = [];
  steps.forEach((step, index) => {
    if (step.action === "end") return;
    const next = step.next_step ?? steps[index + 1]?.id;
    if (next !== undefined && ids.has(next)) edges.push([step.id, next]);
  });
  return edges;
}

export function flowGraph(input: {
  steps: readonly DocumentStep[];
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
  for (const [from, to] of declaredTransitions(input.steps)) {
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
  const edges: FlowEdge[] = [...counts].map(([key, taken]) => {
    const [from, to] = key.split(SEPARATOR) as [string, string];
    return { from, to, taken, points: graph.edge(from, to).points ?? [] };
  });
  const size = graph.graph();
  return { nodes, edges, width: size.width ?? 0, height: size.height ?? 0 };
}
