// The job graph: sources on the left, sinks on the right, each node with its rates,
// watermark, late rows and backpressure; edges coloured by how full the channels into
// their downstream node are. Laid out in columns by distance from the sources (a job
// graph is small and acyclic, so no layout library is needed).

import { h, s, heat, percent, rate, duration, count } from "./dom.js";

const W = 230;
const H = 128;
const GAP_X = 90;
const GAP_Y = 30;
const PAD = 16;

export function graph(job) {
  const operators = job.operators || [];
  const edges = job.edges || [];
  if (operators.length === 0) {
    return h("p", { class: "muted" }, "The job's graph appears once it has started.");
  }
  const place = layout(operators, edges);
  const byName = new Map(operators.map((o) => [o.name, o]));
  const svg = s("svg", {
    id: "job-graph",
    class: "dataflow",
    viewBox: `0 0 ${place.width} ${place.height}`,
    width: place.width,
    height: place.height,
  },
  s("defs", null, s("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse",
  }, s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#667" }))),
  edges.map((e) => edge(e, place.at, byName)),
  operators.map((o) => node(o, place.at.get(o.name))));
  return h("div", { class: "graph" }, svg, legend());
}

/** Columns by longest distance from a source; nodes arrive in graph order. */
function layout(operators, edges) {
  const depth = new Map();
  for (const op of operators) {
    const inputs = edges.filter((e) => e.to === op.name).map((e) => (depth.get(e.from) ?? 0) + 1);
    depth.set(op.name, inputs.length ? Math.max(...inputs) : 0);
  }
  const columns = [];
  for (const op of operators) (columns[depth.get(op.name)] ||= []).push(op.name);
  const tallest = Math.max(...columns.map((c) => c.length));
  const height = 2 * PAD + tallest * H + (tallest - 1) * GAP_Y;
  const width = 2 * PAD + columns.length * W + (columns.length - 1) * GAP_X;
  const at = new Map();
  columns.forEach((names, column) => {
    const top = (height - (names.length * H + (names.length - 1) * GAP_Y)) / 2;
    names.forEach((name, row) => at.set(name, { x: PAD + column * (W + GAP_X), y: top + row * (H + GAP_Y) }));
  });
  return { width, height, at };
}

function edge(e, at, byName) {
  const from = at.get(e.from);
  const to = at.get(e.to);
  if (!from || !to) return null;
  const fill = (byName.get(e.to) || {}).input_fill || 0;
  const [x1, y1, x2, y2] = [from.x + W, from.y + H / 2, to.x, to.y + H / 2];
  const mid = (x1 + x2) / 2;
  const label = e.late ? `late rows, ${e.partitioning}` : e.partitioning;
  return s("g", { class: "edge", "data-from": e.from, "data-to": e.to, "data-fill": fill },
    s("path", {
      d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 - 2} ${y2}`,
      stroke: heat(fill), "stroke-width": 2 + 4 * fill, fill: "none",
      "stroke-dasharray": e.late ? "6 4" : null, "marker-end": "url(#arrow)",
    }),
    s("text", { x: mid, y: (y1 + y2) / 2 - 6, class: "edge-label", "text-anchor": "middle" }, label));
}

function node(op, at) {
  const line = (n, text, cls) => s("text", { x: 10, y: 20 + n * 17, class: cls || "" }, text);
  const lag = op.watermark_lag_ms === null ? "" : ` (lag ${duration(op.watermark_lag_ms)})`;
  const watermark = op.watermark === null ? "none yet" : new Date(op.watermark).toISOString().slice(11, 23);
  const backpressure = op.backpressure ?? 0;
  return s("g", {
    class: `node ${op.role || ""}`,
    transform: `translate(${at.x}, ${at.y})`,
    "data-node": op.name,
    "data-role": op.role,
    "data-rows-in-per-second": op.rows_in_per_second ?? "",
    "data-rows-out-per-second": op.rows_out_per_second ?? "",
    "data-backpressure": op.backpressure ?? "",
    "data-input-fill": op.input_fill,
  },
  s("rect", { width: W, height: H, rx: 6, class: "box" }),
  line(0, `${op.name} ×${op.parallelism}`, "title"),
  line(1, `${op.role || "operator"} · in ${rate(op.rows_in_per_second)} · out ${rate(op.rows_out_per_second)}`),
  line(2, `watermark ${watermark}${lag}`),
  line(3, `late rows ${count(op.late_rows)}`),
  bar(4, `backpressure ${percent(op.backpressure)}`, backpressure),
  op.role === "source" ? null : bar(5, `input ${percent(op.input_fill)} full (${op.input_queued}/${op.input_capacity})`, op.input_fill));
}

function bar(n, label, value) {
  const y = 20 + n * 17;
  const width = W - 20;
  return s("g", null,
    s("rect", { x: 10, y: y - 11, width, height: 14, rx: 2, class: "bar-bg" }),
    s("rect", { x: 10, y: y - 11, width: Math.max(0, Math.min(1, value)) * width, height: 14, rx: 2, fill: heat(value) }),
    s("text", { x: 14, y, class: "bar-label" }, label));
}

function legend() {
  return h("p", { class: "muted small legend" },
    "Backpressure: share of the last seconds the node's busiest subtask waited for room downstream. ",
    "Input: how full its input channels are now. Edges take the colour of the channels they fill: ",
    "a full channel (red) into a node means that node is the bottleneck.");
}
