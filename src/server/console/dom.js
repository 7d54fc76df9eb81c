// Building the page with DOM calls only: text from the server is always set as text,
// never parsed as HTML.

const SVG = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: `h("td", {class: "num"}, "12")`. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

/** A table with a header row and one row per item. */
export function table(columns, rows, attrs) {
  return h(
    "table",
    attrs,
    h("thead", null, h("tr", null, columns.map((c) => h("th", null, c)))),
    h("tbody", null, rows),
  );
}

/** Rows per second: 1234.5 -> "1.2K/s"; null (not sampled yet) -> "–". */
export function rate(value) {
  return value === null || value === undefined ? "–" : `${count(value)}/s`;
}

export function count(value) {
  const units = [[1e9, "G"], [1e6, "M"], [1e3, "K"]];
  for (const [size, unit] of units) {
    if (Math.abs(value) >= size) return `${(value / size).toFixed(1)}${unit}`;
  }
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

export function bytes(value) {
  const units = [[2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"]];
  for (const [size, unit] of units) {
    if (value >= size) return `${(value / size).toFixed(1)} ${unit}`;
  }
  return `${value} B`;
}

/** Milliseconds as "850 ms", "12.3 s", "4 min 10 s". */
export function duration(millis) {
  if (millis === null || millis === undefined) return "–";
  if (millis < 1000) return `${Math.round(millis)} ms`;
  if (millis < 60000) return `${(millis / 1000).toFixed(1)} s`;
  const minutes = Math.floor(millis / 60000);
  return `${minutes} min ${Math.round((millis % 60000) / 1000)} s`;
}

/** Unix milliseconds as an ISO time of day in UTC: event time has no time zone. */
export function time(millis) {
  if (millis === null || millis === undefined) return "–";
  return new Date(millis).toISOString().replace("T", " ").replace("Z", "");
}

/** 0..1 as a percentage. */
export function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
}

/** Green at 0, yellow at 0.5, red at 1. */
export function heat(value) {
  const v = Math.max(0, Math.min(1, value || 0));
  return `hsl(${Math.round(120 * (1 - v))}, 70%, 42%)`;
}
