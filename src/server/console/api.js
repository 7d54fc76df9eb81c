// Talking to the runnel HTTP API with the bearer token the console was given.
//
// The token is kept in sessionStorage: it lives as long as the tab and is sent only
// as the Authorization header, never in a URL. A 401 clears it and asks again.

const KEY = "runnel.token";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.line = error.line;
    this.column = error.column;
  }
}

let unauthorized = () => {};

/** Calls `handler(message)` whenever the server refuses the token. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

function headers(accept) {
  const h = { Accept: accept };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

async function refused(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // not JSON: the status says enough
  }
  const error = new ApiError(response.status, body);
  if (response.status === 401) unauthorized(error.message);
  return error;
}

/** A JSON request; resolves to the parsed reply, rejects with an ApiError. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const response = await fetch(path, {
    method,
    body,
    signal,
    headers: headers("application/json"),
  });
  if (!response.ok) throw await refused(response);
  return response.json();
}

/**
 * Reads a JSON-lines stream, calling `onRows(rows)` with the rows of each chunk as it
 * arrives, until the stream ends or `signal` aborts it.
 */
export async function streamRows(path, onRows, signal) {
  const response = await fetch(path, { signal, headers: headers("application/x-ndjson") });
  if (!response.ok) throw await refused(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop();
    const rows = lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
    if (rows.length > 0) onRows(rows);
  }
}

/**
 * Runs `task` now and then every `millis` while the page is visible, one at a time;
 * returns a function that stops it. Nothing runs while the tab is hidden.
 */
export function poll(task, millis) {
  let timer = null;
  let busy = false;
  let stopped = false;
  const run = async () => {
    timer = null;
    if (stopped || document.hidden) return;
    busy = true;
    try {
      await task();
    } catch (error) {
      if (error.status !== 401) console.warn(error);
    }
    busy = false;
    if (!stopped && !document.hidden) timer = setTimeout(run, millis);
  };
  const visibility = () => {
    if (!document.hidden && timer === null && !busy && !stopped) run();
  };
  document.addEventListener("visibilitychange", visibility);
  run();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    document.removeEventListener("visibilitychange", visibility);
  };
}
