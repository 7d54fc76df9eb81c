// A job's recent checkpoints, newest first: epoch, duration, size, sink commit latency;
// failures with their message. Refreshed every second.

import { api, poll } from "./api.js";
import { bars } from "./charts.js";
import { bytes, duration, h, table, time } from "./dom.js";

export function checkpointsView(content, jobPath) {
  content.replaceChildren(h("p", { class: "muted" }, "Loading checkpoints…"));
  return poll(async () => {
    const reply = await api(`${jobPath}/checkpoints`);
    content.replaceChildren(render(reply));
  }, 1000);
}

function render(reply) {
  const checkpoints = reply.checkpoints;
  if (checkpoints.length === 0) {
    return h("p", { class: "muted", id: "checkpoints-empty" }, "No checkpoint yet.");
  }
  const oldestFirst = [...checkpoints].reverse();
  const chart = bars(oldestFirst.map((c) => ({
    label: `#${c.epoch}`,
    value: c.duration_ms,
    text: duration(c.duration_ms),
    failed: c.status === "failed",
  })), { title: "Duration per checkpoint", id: "checkpoint-chart" });
  const rows = checkpoints.map((c) => h("tr", { "data-epoch": c.epoch, "data-status": c.status, class: c.status },
    h("td", { class: "num" }, c.epoch),
    h("td", null, h("span", { class: `state ${c.status}` }, c.status)),
    h("td", null, `${time(c.completed_at)} (${duration(c.age_ms)} ago)`),
    h("td", { class: "num" }, duration(c.duration_ms)),
    h("td", { class: "num" }, c.status === "failed" ? "–" : bytes(c.size_bytes)),
    h("td", { class: "num" }, duration(c.sink_commit_ms)),
    h("td", { class: "error" }, c.error || "")));
  return h("div", null, chart,
    table(["Epoch", "Status", "Finished", "Duration", "Size", "Sink commit", "Error"], rows,
      { class: "grid", id: "checkpoints" }),
    h("p", { class: "muted small" }, `The newest ${reply.limit} are kept, across restarts of the job.`));
}
