// JSON API calls with the UI session: the cookie travels by itself; state changes carry the CSRF token.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
    this.code = body && typeof body === "object" ? body.code || null : null;
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function messageOf(status, body) {
  if (body && typeof body === "object") {
    const detail = body.detail ?? body.message ?? body.error;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (typeof d === "string" ? d : d.msg || JSON.stringify(d))).join("; ");
    }
    if (detail && typeof detail === "object") return detail.message || JSON.stringify(detail);
  }
  if (status === 502 || status === 503 || status === 504) {
    return `The medcode server is not answering right now (HTTP ${status}). Wait a moment and try again.`;
  }
  if (typeof body === "string" && body && !/^\s*</.test(body)) return body.slice(0, 200);
  return `The request failed (HTTP ${status}). Try again; if it keeps failing, reload the page.`;
}

export const OFFLINE_MESSAGE = "Cannot reach the medcode server: check the network connection, then try again.";

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const upper = method.toUpperCase();
  if (upper !== "GET" && upper !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  const init = { method: upper, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, OFFLINE_MESSAGE, null); // offline, DNS, connection refused: never "Failed to fetch"
  }
  if (resp.status === 401) {
    const next = encodeURIComponent(window.location.pathname + window.location.search);
    window.location.assign(`/ui/signin?next=${next}`);
    throw new ApiError(401, "your session has ended; sign in again", null);
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!resp.ok) {
    let message = messageOf(resp.status, data);
    if (resp.status === 403) message = `Not allowed: ${message}`;
    throw new ApiError(resp.status, message, data);
  }
  return data;
}

export function say(element, message, kind = "") {
  if (!element) return;
  element.textContent = message;
  element.classList.remove("error", "ok");
  if (kind) element.classList.add(kind);
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function isTyping(event) {
  const t = event.target;
  if (!(t instanceof HTMLElement)) return false;
  return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName);
}

export function formatAge(isoTime, now = Date.now()) {
  if (!isoTime) return "–";
  const t = Date.parse(isoTime);
  if (Number.isNaN(t)) return "–";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} d`;
}

export function formatPercent(x) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  return `${Math.round(Number(x) * 100)}%`;
}
