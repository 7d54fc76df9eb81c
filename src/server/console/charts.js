// Two small SVG charts: vertical bars over a sequence (rows per epoch, checkpoint
// durations) and ranked horizontal bars (the top of one window).

import { h, s } from "./dom.js";

const WIDTH = 640;

/** Vertical bars, one per item `{label, value, text, failed}`, oldest on the left. */
export function bars(items, { title, id }) {
  const height = 150;
  const top = 22;
  const bottom = 20;
  const max = Math.max(1, ...items.map((i) => i.value || 0));
  const step = (WIDTH - 20) / Math.max(items.length, 1);
  const width = Math.max(2, Math.min(28, step - 3));
  const plot = height - top - bottom;
  const every = Math.ceil(items.length / 12);
  const shapes = items.map((item, i) => {
    const barHeight = Math.max(1, ((item.value || 0) / max) * plot);
    const x = 10 + i * step;
    return s("g", null,
      s("rect", { x, y: top + plot - barHeight, width, height: barHeight, class: item.failed ? "bar failed" : "bar" },
        s("title", null, `${item.label}: ${item.text}`)),
      i % every === 0 ? s("text", { x: x + width / 2, y: height - 5, class: "axis", "text-anchor": "middle" }, item.label) : null);
  });
  return h("figure", { class: "chart", id },
    h("figcaption", null, title),
    s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height },
      s("text", { x: 10, y: 14, class: "axis" }, `max ${items.length ? items.reduce((a, b) => (b.value > a.value ? b : a)).text : 0}`),
      shapes));
}

/** Horizontal bars, longest first: `{label, value, text}`, at most `limit` of them. */
export function ranked(items, { title, limit = 10 }) {
  const shown = items.slice(0, limit);
  const row = 22;
  const labelWidth = 110;
  const height = 8 + shown.length * row;
  const width = 300;
  const max = Math.max(1, ...shown.map((i) => i.value));
  return h("figure", { class: "chart ranked" },
    h("figcaption", null, title),
    s("svg", { viewBox: `0 0 ${width} ${height}`, width, height },
      shown.map((item, i) => {
        const y = 4 + i * row;
        const length = ((width - labelWidth - 50) * item.value) / max;
        return s("g", { "data-label": item.label, "data-value": item.value },
          s("text", { x: labelWidth - 6, y: y + 14, class: "axis", "text-anchor": "end" }, item.label),
          s("rect", { x: labelWidth, y, width: Math.max(1, length), height: row - 6, class: "bar" }),
          s("text", { x: labelWidth + length + 4, y: y + 14, class: "axis" }, item.text));
      })));
}
