// The one way the storefront talks to gateway-web: JSON in and out, the session's CSRF token on
// every write, and what each answer says about the platform (degraded parts, trace id, retry hints)
// reported to whoever listens (the banner and the footer).

const CSRF_KEY = "msa.csrf"; // sessionStorage: gone with the tab; the session cookie itself is HttpOnly
const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

// gateway-web's answer to /storefront/config.json replaces these; without it, no Zipkin link.
export const config = { zipkin_ui_url: "", csrf_header: "X-CSRF-Token", csrf_cookie: "msa_csrf" };
const listeners = [];

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter; // seconds, or null
  }
}

/** Called after every answer with {traceId, degraded: [...]} */
export function onAnswer(listener) {
  listeners.push(listener);
}

export async function loadConfig() {
  const { data } = await api("/storefront/config.json");
  Object.assign(config, data);
}

// The token of the login answer, kept for this tab; a new tab of a live session reads the cookie
// gateway-web sets for exactly this (readable by the page, never the session itself).
export function csrfToken() {
  const kept = sessionStorage.getItem(CSRF_KEY);
  if (kept) return kept;
  const prefix = `${config.csrf_cookie}=`;
  const cookie = document.cookie.split("; ").find((c) => c.startsWith(prefix));
  return cookie ? decodeURIComponent(cookie.slice(prefix.length)) : null;
}

export function keepCsrfToken(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  const token = WRITES.has(method) ? csrfToken() : null; // none before login: then the write is refused
  if (token) init.headers[config.csrf_header] = token;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { title: "Network error", detail: "The shop could not be reached. Check your connection and try again." }, null);
  }
  const data = await readJson(response);
  const degraded = (response.headers.get("X-Degraded") || "").split(",").map((s) => s.trim()).filter(Boolean);
  const traceId = traceIdOf(response) || (data && typeof data.trace_id === "string" ? data.trace_id : null);
  for (const listener of listeners) listener({ path, traceId, degraded });
  if (!response.ok) {
    const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    throw new ApiError(response.status, data && typeof data === "object" ? data : {}, Number.isNaN(retry) ? null : retry);
  }
  return { status: response.status, data, headers: response.headers };
}

async function readJson(response) {
  const type = response.headers.get("Content-Type") || "";
  if (response.status === 204 || !type.includes("json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

// traceresponse: 00-<32 hex trace id>-<16 hex span id>-<flags> (W3C Trace Context, set by the chassis)
function traceIdOf(response) {
  const match = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(response.headers.get("traceresponse") || "");
  return match ? match[1] : null;
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; this works on plain http too). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
