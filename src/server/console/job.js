// One job: its header (state, rates, watermark, last checkpoint) and three tabs, each
// of which asks the server only for what it shows: the graph, the checkpoint history
// and the live results.

import { api, poll } from "./api.js";
import { h, bytes, duration, rate, time } from "./dom.js";
import { graph } from "./graph.js";
import { checkpointsView } from "./checkpoints.js";
import { resultsView } from "./results.js";
import { stopButton } from "./jobs.js";

const TABS = [["graph", "Graph"], ["checkpoints", "Checkpoints"], ["results", "Live results"]];

export function jobView(main, id, tab) {
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  const summary = h("div", { class: "summary" });
  const content = h("div", { class: "tab-content" });
  const tabs = h("nav", { class: "tabs" }, TABS.map(([name, label]) =>
    h("a", { href: `#/jobs/${encodeURIComponent(id)}/${name}`, class: name === tab ? "active" : "" },
      label)));
  main.append(h("h1", null, h("a", { href: "#/jobs" }, "Jobs"), " / ", id), summary, tabs, content);
  const show = (job) => summary.replaceChildren(header(job));
  const headerOnly = () => poll(async () => show(await api(path)), 1000);
  switch (tab) {
    case "checkpoints":
      return both(headerOnly(), checkpointsView(content, path));
    case "results":
      return both(headerOnly(), resultsView(content, path));
    default:
      return poll(async () => {
        const job = await api(path);
        show(job);
        content.replaceChildren(graph(job));
      }, 1000);
  }
}

function both(a, b) {
  return () => {
    a();
    b();
  };
}

function header(job) {
  const checkpoint = job.last_checkpoint;
  const fact = (label, value) => h("div", { class: "fact" }, h("span", null, label), h("b", null, value));
  const active = ["starting", "running", "restarting"].includes(job.state);
  return h("div", { class: "facts", "data-state": job.state },
    fact("State", h("span", { class: `state ${job.state}` }, job.state)),
    fact("Parallelism", job.parallelism),
    fact("Rows in", rate(job.rows_in_per_second)),
    fact("Rows out", rate(job.rows_out_per_second)),
    fact("Watermark", time(job.watermark)),
    fact("Lag", duration(job.watermark_lag_ms)),
    fact("Last checkpoint", checkpoint
      ? `#${checkpoint.epoch} ${duration(checkpoint.age_ms)} ago (${duration(checkpoint.duration_ms)}, ${bytes(checkpoint.size_bytes)})`
      : "none yet"),
    fact("Restarts", job.restarts),
    active ? stopButton(job.id) : null,
    job.error ? h("p", { class: "error" }, job.error) : null);
}
