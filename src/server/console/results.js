// A job's committed results as they commit: the results stream read as JSON lines
// (`Accept: application/x-ndjson`), drawn as a chart of rows per epoch, a ranked bar
// chart per window for windowed results (top-N, trending), and a table of the newest
// rows. It starts ten epochs back, so a long-running job does not replay its history;
// everything kept in the page is bounded.

import { api, streamRows } from "./api.js";
import { bars, ranked } from "./charts.js";
import { count, h, table } from "./dom.js";

const TAGS = ["_epoch", "_snapshot_id"];
const WINDOW = ["window_start", "window_end"];
const RANKS = ["rn", "rank", "row_number"];
const KEEP_ROWS = 200;
const KEEP_EPOCHS = 60;
const KEEP_WINDOWS = 3;
const EPOCHS_BACK = 10;

export function resultsView(content, jobPath) {
  const controller = new AbortController();
  const state = { rows: [], epochs: new Map(), windows: new Map(), columns: null, total: 0 };
  const status = h("p", { class: "muted", id: "results-status" }, "Waiting for committed results…");
  const charts = h("div", { id: "live-chart", class: "charts" });
  const rows = h("div", { id: "results-table" });
  content.replaceChildren(status, charts, rows);
  let drawing = false;
  const redraw = () => {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(() => {
      drawing = false;
      draw(state, status, charts, rows);
    });
  };
  follow(jobPath, state, redraw, status, controller.signal);
  return () => controller.abort();
}

async function follow(jobPath, state, redraw, status, signal) {
  while (!signal.aborted) {
    try {
      const job = await api(jobPath, { signal });
      const newest = job.last_checkpoint ? job.last_checkpoint.epoch : 0;
      const seen = state.epochs.size ? Math.max(...state.epochs.keys()) + 1 : 0;
      const from = seen || (newest > EPOCHS_BACK ? newest - EPOCHS_BACK : 0);
      const query = from > 0 ? `epoch:${from}` : "earliest";
      await streamRows(`${jobPath}/results?from=${query}`, (batch) => {
        take(state, batch);
        redraw();
      }, signal);
      status.textContent = `The job has ended; ${count(state.total)} rows shown.`;
      return;
    } catch (error) {
      if (signal.aborted || error.status === 401) return;
      status.textContent = `No results yet (${error.message}); retrying.`;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

function take(state, batch) {
  if (!state.columns) state.columns = Object.keys(batch[0]);
  for (const row of batch) {
    state.total += 1;
    state.epochs.set(row._epoch, (state.epochs.get(row._epoch) || 0) + 1);
    if (WINDOW.every((c) => c in row)) {
      const key = `${row.window_start}|${row.window_end}`;
      if (!state.windows.has(key)) state.windows.set(key, []);
      state.windows.get(key).push(row);
    }
  }
  state.rows.push(...batch);
  state.rows.splice(0, Math.max(0, state.rows.length - KEEP_ROWS));
  trim(state.epochs, KEEP_EPOCHS, (a, b) => a - b);
  trim(state.windows, KEEP_WINDOWS, (a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Drops the smallest keys of `map` until `keep` are left. */
function trim(map, keep, order) {
  if (map.size <= keep) return;
  const keys = [...map.keys()].sort(order);
  for (const key of keys.slice(0, map.size - keep)) map.delete(key);
}

function draw(state, status, charts, rows) {
  const epochs = [...state.epochs.keys()].sort((a, b) => a - b);
  const newest = epochs[epochs.length - 1];
  const last = state.rows[state.rows.length - 1];
  status.textContent = `${count(state.total)} rows; newest epoch ${newest}` +
    (last && last._snapshot_id !== null ? ` (Iceberg snapshot ${last._snapshot_id})` : "");
  charts.dataset.epoch = newest;
  charts.dataset.rows = state.total;
  const perEpoch = bars(epochs.map((e) => ({ label: `#${e}`, value: state.epochs.get(e), text: count(state.epochs.get(e)) })),
    { title: "Rows committed per epoch", id: "epoch-chart" });
  charts.replaceChildren(perEpoch, ...windowCharts(state));
  const columns = state.columns || [];
  const newestFirst = state.rows.slice(-50).reverse();
  rows.replaceChildren(table(columns, newestFirst.map((row) =>
    h("tr", null, columns.map((c) => h("td", null, row[c] === null ? "null" : String(row[c]))))),
  { class: "grid small" }));
}

/** For windowed results: the newest windows, each ranked by its measure. */
function windowCharts(state) {
  if (state.windows.size === 0) return [];
  const columns = state.columns.filter((c) => !TAGS.includes(c) && !WINDOW.includes(c));
  const rank = columns.find((c) => RANKS.includes(c));
  const label = columns.find((c) => c !== rank);
  const sample = state.rows[state.rows.length - 1];
  const measure = columns.find((c) => c !== rank && c !== label && typeof sample[c] === "number");
  const keys = [...state.windows.keys()].sort().reverse();
  const charts = keys.map((key) => {
    const windowRows = state.windows.get(key);
    const value = (row) => (measure ? row[measure] : 1);
    const sorted = [...windowRows].sort((a, b) => (rank ? a[rank] - b[rank] : value(b) - value(a)));
    const [start, end] = key.split("|").map((t) => String(t).replace(/^.*T/, ""));
    return ranked(sorted.map((row) => ({ label: `${row[label]}`, value: value(row), text: count(value(row)) })),
      { title: `${label} by ${measure || "rows"}, window ${start}–${end}` });
  });
  return [h("div", { class: "windows", id: "window-charts", "data-window": keys[0] }, charts)];
}
