// The one way the storefront talks to gateway-web: JSON in and out, the session's CSRF token on
// every write, and what each answer says about the platform (degraded parts, trace id, retry hints)
// reported to whoever listens (the banner and the footer).

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
// The problem type of a write gateway-web refused for its CSRF token (gateway_web.auth.service).
const CSRF_PROBLEM = "urn:msa-platform:problem:csrf-token";

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

  /** A write refused because the CSRF token sent is not the session's (or none was sent). */
  get csrfRejected() {
    return this.status === 403 && this.problem.type === CSRF_PROBLEM;
  }
}

/** Called after every answer with {path, tag, traceId, sampled, degraded: [...]}; tag: the caller's. */
export function onAnswer(listener) {
  listeners.push(listener);
}

export async function loadConfig() {
  const { data } = await api("/storefront/config.json");
  Object.assign(config, data);
}

// The session's CSRF token, from the cookie gateway-web sets with the session cookie for exactly this
// (readable by the page, unlike the session's). Read at every write, never kept: a login in another
// tab replaces both cookies, and this tab's next write sends the new token.
export function csrfToken() {
  const prefix = `${config.csrf_cookie}=`;
  const cookie = document.cookie.split("; ").find((c) => c.startsWith(prefix));
  if (!cookie) return null;
  try {
    return decodeURIComponent(cookie.slice(prefix.length)) || null;
  } catch {
    return null;
  }
}

/** Drops a CSRF token gateway-web refused: the page then offers to log in again rather than fail again. */
export function forgetCsrfToken() {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${config.csrf_cookie}=; Max-Age=0; Path=/; SameSite=Lax${secure}`;
}

export async function api(path, { method = "GET", body, headers = {}, tag } = {}) {
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
  const trace = traceOf(response, data);
  for (const listener of listeners) listener({ path, tag, degraded, ...trace });
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

// traceresponse: 00-<32 hex trace id>-<16 hex span id>-<flags> (W3C Trace Context, set by the chassis).
// Flag 01 (sampled): the trace goes to Zipkin; without it, Zipkin never has it. A problem's trace_id
// alone says nothing of sampling.
function traceOf(response, data) {
  const match = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(response.headers.get("traceresponse") || "");
  if (match) return { traceId: match[1], sampled: (Number.parseInt(match[2], 16) & 1) === 1 };
  const fromProblem = data && typeof data.trace_id === "string" ? data.trace_id : null;
  return { traceId: fromProblem, sampled: false };
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; this works on plain http too). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
