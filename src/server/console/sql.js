// The SQL page: an editor that submits its text to POST /v1/sql (Ctrl+Enter or Run) and
// shows what each statement did: sources and jobs created, EXPLAIN plans, SHOW lists. A
// refused text shows the server's message and marks the line and column it names.

import { api } from "./api.js";
import { h, table } from "./dom.js";

const KEY = "runnel.sql";
const EXAMPLE = `-- Declare a source, then a sink: CREATE SINK starts a job.
-- EXPLAIN CREATE SINK ... shows the dataflow without starting it.
SHOW SOURCES;
SHOW JOBS;`;

export function sqlView(main) {
  const gutter = h("pre", { class: "gutter", "aria-hidden": "true" });
  const editor = h("textarea", { id: "sql-editor", spellcheck: "false", rows: 18 });
  editor.value = sessionStorage.getItem(KEY) || EXAMPLE;
  const error = h("div", { id: "sql-error", class: "error-box", hidden: true });
  const output = h("div", { id: "sql-results" });
  const run = h("button", { id: "sql-run", class: "primary" }, "Run");
  const numbers = (bad) => {
    const lines = editor.value.split("\n").length;
    gutter.replaceChildren(...Array.from({ length: lines }, (_, i) =>
      h("span", { class: i + 1 === bad ? "error-line" : "", "data-line": i + 1 }, `${i + 1}\n`)));
  };
  const submit = async () => {
    sessionStorage.setItem(KEY, editor.value);
    run.disabled = true;
    error.hidden = true;
    numbers(null);
    try {
      const reply = await api("/v1/sql", { method: "POST", body: editor.value });
      output.replaceChildren(...reply.results.map(result));
    } catch (e) {
      output.replaceChildren();
      showError(e, editor, error);
      numbers(e.line);
    } finally {
      run.disabled = false;
    }
  };
  editor.addEventListener("input", () => numbers(null));
  editor.addEventListener("scroll", () => { gutter.scrollTop = editor.scrollTop; });
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
    }
  });
  run.addEventListener("click", submit);
  numbers(null);
  main.append(h("h1", null, "SQL"),
    h("div", { class: "editor" }, gutter, editor),
    h("div", { class: "toolbar" }, run, h("span", { class: "muted small" }, "Ctrl+Enter runs the text")),
    error, output);
}

/** The server's message; for a SQL error, the line with a caret under the column. */
function showError(e, editor, box) {
  box.hidden = false;
  box.dataset.line = e.line ?? "";
  box.dataset.column = e.column ?? "";
  const parts = [h("p", { class: "message" }, e.message)];
  if (e.line) {
    const text = editor.value.split("\n")[e.line - 1] ?? "";
    const caret = " ".repeat(Math.max(0, e.column - 1)) + "^";
    parts.unshift(h("p", { class: "where" }, `Line ${e.line}, column ${e.column}`));
    parts.push(h("pre", { class: "excerpt" }, `${String(e.line).padStart(4)} | ${text}\n     | ${caret}`));
    // Put the cursor where the error is.
    const offset = editor.value.split("\n").slice(0, e.line - 1).join("\n").length + (e.line > 1 ? 1 : 0);
    editor.focus();
    editor.setSelectionRange(offset + e.column - 1, offset + e.column);
  }
  box.replaceChildren(...parts);
}

function result(r) {
  switch (r.statement) {
    case "create_source":
      return h("p", { class: "ok" }, `Source ${r.name} created.`);
    case "create_sink":
      return h("p", { class: "ok" }, `Sink ${r.name} created; job `,
        h("a", { href: `#/jobs/${encodeURIComponent(r.job)}/graph` }, r.job),
        ` started${r.table ? `, committing to table ${r.table}` : ""}.`);
    case "explain":
      return h("div", null, h("p", null, "Plan:"), h("pre", { class: "plan", id: "sql-plan" }, r.plan));
    case "drop_sink":
      return h("p", { class: "ok" }, `Sink ${r.name}: ${r.state ?? "no such sink"}.`);
    case "show_sources":
      return listing("Sources", r.sources, ["name", "connector", "watermark"]);
    case "show_sinks":
      return listing("Sinks", r.sinks, ["name", "topic", "state"]);
    case "show_jobs":
      return listing("Jobs", r.jobs, ["id", "state", "parallelism", "rows_in", "rows_out"]);
    default:
      return h("pre", null, JSON.stringify(r, null, 2));
  }
}

function listing(title, items, columns) {
  const cell = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v ?? ""));
  return h("div", null, h("h3", null, title),
    items.length === 0 ? h("p", { class: "muted" }, "none")
      : table(columns, items.map((i) => h("tr", null, columns.map((c) => h("td", null, cell(i[c]))))), { class: "grid small" }));
}
