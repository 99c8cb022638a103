"use strict";
// jetmq dashboard: fetching the master's JSON API and formatting what it returns.

const TERMINAL = new Set(["COMPLETED", "FAILED"]);
const pageToken = new URLSearchParams(location.search).get("token");

/** An API URL, carrying the page's ?token= when it was opened with one. */
function apiUrl(path) {
  const url = "/api" + path;
  if (!pageToken) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(pageToken);
}

/** GET /api<path>: the parsed JSON (or text); an Error with .status for an HTTP error. */
async function api(path) {
  const response = await fetch(apiUrl(path), {cache: "no-store", credentials: "same-origin"});
  if (!response.ok) {
    const error = new Error(`${response.status} ${response.statusText} from ${path}`);
    error.status = response.status;
    error.body = await response.text().catch(() => "");
    throw error;
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** Text made safe to put into HTML. */
function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g,
    c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
}

/** Sets an element's HTML only when it changed (keeps selections and scroll positions). */
function setHTML(element, html) {
  if (element && element.__html !== html) {
    element.innerHTML = html;
    element.__html = html;
  }
}

function fmtCount(n) {
  return n == null ? "–" : Number(n).toLocaleString("en-US");
}

function fmtRate(n) {
  if (n == null) return "–";
  return Number(n).toLocaleString("en-US", {minimumFractionDigits: 1, maximumFractionDigits: 1}) + " /s";
}

function fmtTime(ms) {
  if (ms == null || ms < 0) return "–";
  const d = new Date(ms), p = n => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function fmtDuration(ms) {
  if (ms == null || ms < 0) return "–";
  const s = Math.floor(ms / 1000), p = n => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${p(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${p(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d ${p(Math.floor(s / 3600) % 24)}h`;
}

function fmtBytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function statusBadge(status) {
  const s = status || "UNKNOWN";
  return `<span class="status s-${esc(s.toLowerCase())}" data-status="${esc(s)}">${esc(s)}</span>`;
}

/** "ValueError: bad item 7" from a describe document's failure, else the raw failure text. */
function failureReason(failure, text) {
  if (failure) {
    if (failure.exception) return failure.message ? `${failure.exception}: ${failure.message}` : failure.exception;
    return failure.message || failure.text || "";
  }
  return text || "";
}

/** Items per second read by the job's sources (vertices no edge goes into). */
function throughput(doc) {
  const vertices = doc?.metrics?.vertices || [];
  if (!vertices.length) return null;
  const fed = new Set((doc.dag?.edges || []).map(e => e.to));
  const sources = doc.dag ? vertices.filter(v => !fed.has(v.name)) : vertices.filter(v => !v.items_in);
  const rates = sources.map(v => v.rate).filter(r => r != null);
  return rates.length ? rates.reduce((a, b) => a + b, 0) : null;
}

/** How long the job has run: since its current execution started, or from submission to completion. */
function uptime(job, doc) {
  if (job.completion_time != null) return job.completion_time - job.submission_time;
  if (job.status !== "RUNNING") return null;
  const executions = doc?.executions || [];
  const current = executions.length ? executions[executions.length - 1] : null;
  const since = current && current.end_time == null ? current.start_time : job.submission_time;
  return Date.now() - since;
}

function table(headers, rows, attrs = "") {
  return `<table ${attrs}><thead><tr>${headers.map(h => `<th>${esc(h)}</th>`).join("")}</tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table>`;
}
