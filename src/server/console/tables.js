// The tables page: the Iceberg tables of the data root with their snapshots. A table's
// page lists its snapshots newest first, with the epoch and sink that committed each.
// Read when the page opens (and on Refresh): tables change once per checkpoint at most.

import { api } from "./api.js";
import { count, h, table, time } from "./dom.js";

export function tablesView(main, name) {
  const body = h("div", { id: "tables" }, h("p", { class: "muted" }, "Loading…"));
  const refresh = h("button", null, "Refresh");
  const load = () => (name ? snapshots(body, name) : list(body)).catch((e) => {
    body.replaceChildren(h("p", { class: "error" }, e.message));
  });
  refresh.addEventListener("click", load);
  const title = name
    ? h("h1", null, h("a", { href: "#/tables" }, "Tables"), " / ", name)
    : h("h1", null, "Tables");
  main.append(title, h("div", { class: "toolbar" }, refresh), body);
  load();
}

async function list(body) {
  const reply = await api("/v1/tables");
  if (reply.tables.length === 0) {
    body.replaceChildren(h("p", { class: "muted" }, "No tables yet: a sink WITH (connector = 'iceberg', table = '...') creates one."));
    return;
  }
  const rows = reply.tables.map((t) => h("tr", { "data-table": t.name },
    h("td", null, h("a", { href: `#/tables/${encodeURIComponent(t.name)}` }, t.name)),
    h("td", { class: "num" }, t.snapshots),
    h("td", null, t.current_snapshot_id ?? "–"),
    h("td", null, time(t.last_updated_ms))));
  body.replaceChildren(table(["Table", "Snapshots", "Current snapshot", "Last updated"], rows, { class: "grid" }));
}

async function snapshots(body, name) {
  const meta = await api(`/v1/tables/${encodeURIComponent(name)}/metadata`);
  const rows = [...meta.snapshots].reverse().map((snap) => {
    const summary = snap.summary || {};
    const extra = summary.additional_properties || summary;
    return h("tr", { "data-snapshot": snap.snapshot_id, class: snap.snapshot_id === meta.current_snapshot_id ? "current" : "" },
      h("td", null, snap.snapshot_id),
      h("td", null, time(snap.timestamp_ms)),
      h("td", null, summary.operation ?? "–"),
      h("td", { class: "num" }, extra["runnel.epoch"] ?? "–"),
      h("td", null, extra["runnel.sink-id"] ?? "–"),
      h("td", { class: "num" }, extra["added-records"] ? count(Number(extra["added-records"])) : "–"),
      h("td", { class: "num" }, extra["total-records"] ? count(Number(extra["total-records"])) : "–"));
  });
  body.replaceChildren(
    h("p", { class: "muted small" }, `Metadata: ${meta.metadata_location}`),
    table(["Snapshot", "Committed", "Operation", "Epoch", "Sink", "Added rows", "Total rows"], rows, { class: "grid" }));
}
