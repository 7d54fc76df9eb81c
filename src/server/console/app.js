// The console's entry point: the token prompt and a router from the URL's hash to a
// view. A view is a function that fills an element and returns how to stop it (its
// polling timers and streams); only the view on screen runs.

import { api, onUnauthorized, setToken, token } from "./api.js";
import { jobsView } from "./jobs.js";
import { jobView } from "./job.js";
import { sqlView } from "./sql.js";
import { tablesView } from "./tables.js";

const main = document.getElementById("view");
const login = document.getElementById("login");
let stopView = () => {};

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  switch (parts[0]) {
    case "sql":
      return ["sql", () => sqlView(main)];
    case "tables":
      return ["tables", () => tablesView(main, parts[1])];
    case "jobs":
      if (parts[1]) return ["jobs", () => jobView(main, parts[1], parts[2] || "graph")];
      return ["jobs", () => jobsView(main)];
    default:
      return ["jobs", () => jobsView(main)];
  }
}

function show() {
  stopView();
  main.replaceChildren();
  const [section, view] = route();
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.nav === section);
  }
  stopView = view() || (() => {});
}

function ask(message) {
  stopView();
  stopView = () => {};
  main.replaceChildren();
  login.hidden = false;
  const error = document.getElementById("login-error");
  error.textContent = message || "";
  error.hidden = !message;
  document.getElementById("token").focus();
}

onUnauthorized((message) => {
  // A refused token is forgotten; without one the server's message says what is missing.
  const had = token() !== null;
  setToken(null);
  ask(had ? `The server refused the token: ${message}` : "");
});

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  setToken(input.value.trim());
  input.value = "";
  await start();
});

document.getElementById("signout").addEventListener("click", () => {
  setToken(null);
  ask("");
});

async function start() {
  try {
    // Whether the server takes this token (or needs none) before any view asks for data.
    await api("/v1/jobs");
  } catch (error) {
    if (error.status !== 401) throw error;
    return;
  }
  login.hidden = true;
  document.getElementById("signout").hidden = token() === null;
  show();
}

window.addEventListener("hashchange", () => {
  if (login.hidden) show();
});
start();
