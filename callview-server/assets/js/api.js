// Talking to the callview API: every URL is relative to where the viewer
// is served (this module lives at <base>/assets/js/api.js), the API token
// (when the server needs one) comes from `?token=` once and is kept in
// this tab's sessionStorage.

const BASE = new URL("../../", import.meta.url);
const TOKEN_KEY = "callview.token";

/** An error answer of the API: `{"error": {"code", "message"}}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The URL of an API path such as `api/conversations`. */
export function url(path, params) {
  const u = new URL(path, BASE);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") u.searchParams.set(key, String(value));
  }
  return u;
}

/**
 * Takes `?token=` from the address into sessionStorage and removes it from
 * the address (and so from the history and any bookmark).
 */
export function adoptTokenFromAddress() {
  const here = new URL(window.location.href);
  if (!here.searchParams.has("token")) return;
  const token = here.searchParams.get("token").trim();
  if (token) setToken(token);
  here.searchParams.delete("token");
  window.history.replaceState(window.history.state, "", here.pathname + here.search + here.hash);
}

export function token() {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(value) {
  try {
    if (value) window.sessionStorage.setItem(TOKEN_KEY, value);
    else window.sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the token lasts until the page is closed.
  }
}

/**
 * Fetches JSON; throws ApiError for an error answer or a network failure.
 * `body` is sent as JSON; `ifMatch` (a version) as an `If-Match` header.
 */
export async function request(path, { method = "GET", params, signal, body, ifMatch } = {}) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch !== undefined && ifMatch !== null) headers["If-Match"] = `"${ifMatch}"`;
  let response;
  try {
    const init = { method, headers, signal, cache: "no-store" };
    if (body !== undefined) init.body = JSON.stringify(body);
    response = await fetch(url(path, params), init);
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, "network", "The server cannot be reached.");
  }
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  if (!response.ok && !(path === "healthz" && answer && answer.status)) {
    const error = (answer && answer.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || response.statusText);
  }
  return answer;
}

/** The event stream's URL; an EventSource cannot send headers, so the token goes in the query. */
export function eventsUrl() {
  const t = token();
  return url("api/events", t ? { token: t } : {});
}
