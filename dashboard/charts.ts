/**
 * The page's drawings, in SVG: a protocol's flow graph (laid out by flow.ts) and the cost per
 * day as bars.
 */
import { h, millis, percent, s } from "./dom.ts";
import type { FlowGraph } from "./flow.ts";

function successColour(rate: number | null): string {
  if (rate === null) return "#eef0f4";
  if (rate >= 0.95) return "#dff3e4";
  if (rate >= 0.8) return "#fff4cc";
  return "#fde0dc";
}

export function flowSvg(graph: FlowGraph): SVGSVGElement {
  const maxTaken = Math.max(1, ...graph.edges.map((e) => e.taken));
  const svg = s("svg", {
    class: "flow",
    width: graph.width,
    height: graph.height,
    viewBox: `0 0 ${graph.width} ${graph.height}`,
    role: "img",
    "aria-label": "protocol flow",
  });
  svg.append(
    s(
      "defs",
      {},
      s(
        "marker",
        {
          id: "arrow",
          viewBox: "0 0 10 10",
          refX: 9,
          refY: 5,
          // In user space: the arrow keeps its size whatever the edge's width.
          markerUnits: "userSpaceOnUse",
          markerWidth: 10,
          markerHeight: 10,
          orient: "auto",
        },
        s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#5b6475" }),
      ),
    ),
  );
  for (const edge of graph.edges) {
    const d = edge.points.map((p, i) => `${i === 0 ? "M" : "L"}${p.x},${p.y}`).join(" ");
    const middle = edge.points[Math.floor(edge.points.length / 2)];
    svg.append(
      s(
        "g",
        { class: "edge", "data-from": edge.from, "data-to": edge.to, "data-taken": edge.taken },
        s("title", {}, `${edge.from} → ${edge.to}: taken ${edge.taken} times`),
        s("path", {
          d,
          fill: "none",
          stroke: "#5b6475",
          "stroke-width": edge.taken === 0 ? 1 : 1 + (5 * edge.taken) / maxTaken,
          "stroke-dasharray": edge.taken === 0 ? "4 3" : undefined,
          "marker-end": "url(#arrow)",
        }),
        middle && s("text", { x: middle.x + 6, y: middle.y, fill: "#3b4252" }, `×${edge.taken}`),
      ),
    );
  }
  for (const node of graph.nodes) {
    const left = node.x - node.width / 2;
    const top = node.y - node.height / 2;
    svg.append(
      s(
        "g",
        {
          class: node.failurePoint ? "step failure-point" : "step",
          "data-step": node.id,
          "aria-label": `step ${node.id}`,
        },
        s(
          "title",
          {},
          `${node.id} (${node.action}): ${node.total} records, success ${percent(node.successRate)}, p50 ${millis(node.p50)}, p95 ${millis(node.p95)}${node.failurePoint ? `, failure point (${percent(node.failureRate)} fail)` : ""}`,
        ),
        s("rect", {
          x: left,
          y: top,
          width: node.width,
          height: node.height,
          rx: 6,
          fill: successColour(node.successRate),
          stroke: node.failurePoint ? "#b3261e" : "#8a93a6",
          "stroke-width": node.failurePoint ? 3 : 1,
        }),
        s(
          "text",
          { x: left + 8, y: top + 16, "font-weight": "bold" },
          node.failurePoint ? `⚠ ${node.id}` : node.id,
          s("tspan", { "font-weight": "normal", fill: "#667" }, `  ${node.action}`),
        ),
        s(
          "text",
          { x: left + 8, y: top + 32, class: "success" },
          `success ${percent(node.successRate)} · n ${node.total}`,
        ),
        s(
          "text",
          { x: left + 8, y: top + 47, class: "latency" },
          `p50 ${millis(node.p50)} · p95 ${millis(node.p95)}`,
        ),
      ),
    );
  }
  return svg;
}

export interface DayFigure {
  day: string;
  value: number;
  label: string;
}

/** Bars, one a day, with the largest value marked on the axis. */
export function barsSvg(days: readonly DayFigure[], unit: string): Element {
  if (days.length === 0) return h("p", { class: "muted" }, "No usage in this period.");
  const width = Math.max(320, days.length * 22 + 60);
  const barWidth = Math.min(40, (width - 60) / days.length);
  const height = 180;
  const plot = { left: 50, top: 10, bottom: 30 };
  const max = Math.max(...days.map((d) => d.value)) || 1;
  const svg = s("svg", { class: "bars", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  const bottom = height - plot.bottom;
  svg.append(
    s("line", { x1: plot.left, x2: width - 10, y1: bottom, y2: bottom, stroke: "#8a93a6" }),
    s("text", { x: 4, y: plot.top + 8 }, `${formatValue(max)}`),
    s("text", { x: 4, y: bottom }, "0"),
    s("text", { x: 4, y: height - 4, fill: "#667" }, unit),
  );
  const every = Math.ceil(days.length / 8);
  days.forEach((day, index) => {
    const barHeight = ((bottom - plot.top) * day.value) / max;
    const x = plot.left + index * barWidth;
    svg.append(
      s(
        "g",
        { class: "bar", "data-day": day.day },
        s("title", {}, `${day.day}: ${day.label}`),
        s("rect", {
          x: x + 2,
          y: bottom - barHeight,
          width: Math.max(2, barWidth - 4),
          height: barHeight,
          fill: "#4d6bdb",
        }),
        index % every === 0 && s("text", { x, y: height - 14, fill: "#667" }, day.day.slice(5)),
      ),
    );
  });
  return svg;
}

function formatValue(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toPrecision(2);
}
