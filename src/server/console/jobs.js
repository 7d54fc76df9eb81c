// The jobs page: every job with its state, rates, watermark, last checkpoint and
// restarts, refreshed every second; a job can be stopped (after a confirmation).

import { api, poll } from "./api.js";
import { bytes, duration, h, rate, table, time } from "./dom.js";

export function jobsView(main) {
  const body = h("div", { id: "jobs" }, h("p", { class: "muted" }, "Loading jobs…"));
  main.append(h("h1", null, "Jobs"), body);
  return poll(async () => {
    const reply = await api("/v1/jobs");
    body.replaceChildren(jobsTable(reply.jobs));
  }, 1000);
}

function jobsTable(jobs) {
  if (jobs.length === 0) {
    return h("p", { class: "muted" }, "No jobs yet. Submit a CREATE SINK statement on the ",
      h("a", { href: "#/sql" }, "SQL page"), ".");
  }
  const columns = ["Job", "State", "Parallelism", "Rows in", "Rows out", "Watermark",
    "Lag", "Last checkpoint", "Restarts", ""];
  return table(columns, jobs.map(jobRow), { class: "grid" });
}

function jobRow(job) {
  const checkpoint = job.last_checkpoint;
  const last = checkpoint
    ? `#${checkpoint.epoch}, ${duration(checkpoint.age_ms)} ago, took ${duration(checkpoint.duration_ms)}, ${bytes(checkpoint.size_bytes)}`
    : "none yet";
  const active = ["starting", "running", "restarting"].includes(job.state);
  return h("tr", { "data-job": job.id, "data-state": job.state },
    h("td", null, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}/graph` }, job.id)),
    h("td", null, h("span", { class: `state ${job.state}` }, job.state),
      job.error ? h("div", { class: "error small" }, job.error) : null),
    h("td", { class: "num" }, job.parallelism),
    h("td", { class: "num" }, rate(job.rows_in_per_second)),
    h("td", { class: "num" }, rate(job.rows_out_per_second)),
    h("td", null, time(job.watermark)),
    h("td", { class: "num" }, duration(job.watermark_lag_ms)),
    h("td", null, last),
    h("td", { class: "num" }, job.restarts),
    h("td", null, active ? stopButton(job.id) : null));
}

export function stopButton(id) {
  return h("button", {
    class: "danger",
    "data-stop": id,
    onclick: async (event) => {
      const question = `Stop job ${id}? It takes a final checkpoint and is never resumed.`;
      if (!confirm(question)) return;
      event.target.disabled = true;
      try {
        await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
      } catch (error) {
        alert(`Could not stop ${id}: ${error.message}`);
      }
    },
  }, "Stop");
}
