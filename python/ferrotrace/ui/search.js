// The search page (`/`): a form whose every field lives in the URL, so a
// search can be shared; results as a scatter plot of duration over time
// and as a list with duration bars; polled so new traces appear.
import { api, every, summarise } from "./api.js";
import {
  el, svg, replace, notice, traceHref, serviceChip,
  formatMicros, formatTime, formatAgo,
} from "./dom.js";

const POLL_MS = 3000;
const LOOKBACKS = [
  ["15m", "Last 15 minutes", 15 * 60],
  ["1h", "Last hour", 3600],
  ["6h", "Last 6 hours", 6 * 3600],
  ["24h", "Last 24 hours", 86400],
  ["7d", "Last 7 days", 7 * 86400],
  ["all", "All time", null],
  ["custom", "Custom range", null],
];
const FIELDS = ["service", "operation", "tags", "minDuration", "maxDuration", "lookback", "start", "end", "errors", "limit", "order"];

/**
 * `key=value` pairs separated by spaces (values may be "quoted"), as
 * Jaeger UI's tag field takes them, to the JSON map the API wants.
 */
export function parseTags(text) {
  const tags = {};
  const re = /\s*([^\s=]+)=("((?:[^"\\]|\\.)*)"|\S*)/y;
  const rest = text.trim();
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) throw new Error(`tags: expected key=value at "${rest.slice(pos)}"`);
    tags[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : m[2];
    pos = re.lastIndex;
    while (pos < rest.length && rest[pos] === " ") pos++;
  }
  return tags;
}

function toLocalInput(us) {
  if (!us) return "";
  const d = new Date(Number(us) / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(text) {
  if (!text) return "";
  const ms = new Date(text).getTime();
  return Number.isFinite(ms) ? String(ms * 1000) : "";
}

/** The URL's query (the page's state) to the API's parameters. */
function apiParams(q) {
  const tags = parseTags(q.tags || "");
  if (q.errors === "1") tags.error = "true";
  const params = {
    service: q.service,
    operation: q.service ? q.operation : "",
    minDuration: q.minDuration,
    maxDuration: q.maxDuration,
    limit: q.limit || "20",
    order: q.order === "slowest" ? "slowest" : "",
  };
  if (Object.keys(tags).length) params.tags = JSON.stringify(tags);
  const lookback = LOOKBACKS.find(([k]) => k === (q.lookback || "all"));
  if (lookback && lookback[2]) {
    params.start = String((Date.now() - lookback[2] * 1000) * 1000);
  } else if (q.lookback === "custom") {
    params.start = q.start;
    params.end = q.end;
  }
  return params;
}

function readQuery() {
  const u = new URLSearchParams(location.search);
  const q = {};
  for (const f of FIELDS) q[f] = u.get(f) || "";
  return q;
}

function writeQuery(q) {
  const u = new URLSearchParams();
  for (const f of FIELDS) if (q[f]) u.set(f, q[f]);
  const qs = u.toString();
  history.pushState(null, "", qs ? `/?${qs}` : "/");
}

export async function render(main) {
  const q = readQuery();
  const services = await api.services().catch(() => []);
  const field = (label, input) => el("label", { class: "field" }, el("span", null, label), input);

  const service = el("select", { name: "service" },
    el("option", { value: "" }, "All services"),
    services.map((s) => el("option", { value: s }, s)));
  service.value = services.includes(q.service) ? q.service : "";
  const operation = el("select", { name: "operation" }, el("option", { value: "" }, "All operations"));
  const tags = el("input", { name: "tags", type: "text", placeholder: "http.status_code=500 region=\"eu west\"", value: q.tags });
  const minDuration = el("input", { name: "minDuration", type: "text", placeholder: "e.g. 100ms", size: 8, value: q.minDuration });
  const maxDuration = el("input", { name: "maxDuration", type: "text", placeholder: "e.g. 1.5s", size: 8, value: q.maxDuration });
  const lookback = el("select", { name: "lookback" }, LOOKBACKS.map(([k, label]) => el("option", { value: k }, label)));
  lookback.value = q.lookback || "all";
  const start = el("input", { name: "start", type: "datetime-local", value: toLocalInput(q.start) });
  const end = el("input", { name: "end", type: "datetime-local", value: toLocalInput(q.end) });
  const custom = el("span", { class: "custom-range" }, field("From", start), field("To", end));
  const errors = el("input", { name: "errors", type: "checkbox", checked: q.errors === "1" });
  const limit = el("input", { name: "limit", type: "number", min: 1, max: 10000, size: 5, value: q.limit || "20" });
  const order = el("select", { name: "order" },
    el("option", { value: "" }, "Most recent"), el("option", { value: "slowest" }, "Slowest"));
  order.value = q.order === "slowest" ? "slowest" : "";

  async function loadOperations(selected) {
    replace(operation, el("option", { value: "" }, "All operations"));
    if (!service.value) return;
    const names = await api.operations(service.value).catch(() => []);
    for (const n of names) operation.appendChild(el("option", { value: n }, n));
    operation.value = names.includes(selected) ? selected : "";
  }
  const showCustom = () => { custom.hidden = lookback.value !== "custom"; };
  service.addEventListener("change", () => loadOperations(""));
  lookback.addEventListener("change", showCustom);
  showCustom();
  await loadOperations(q.operation);

  const form = el("form", { class: "search-form", on: { submit: (e) => {
    e.preventDefault();
    const next = {
      service: service.value,
      operation: operation.value,
      tags: tags.value.trim(),
      minDuration: minDuration.value.trim(),
      maxDuration: maxDuration.value.trim(),
      lookback: lookback.value === "all" ? "" : lookback.value,
      start: lookback.value === "custom" ? fromLocalInput(start.value) : "",
      end: lookback.value === "custom" ? fromLocalInput(end.value) : "",
      errors: errors.checked ? "1" : "",
      limit: limit.value && limit.value !== "20" ? limit.value : "",
      order: order.value,
    };
    writeQuery(next);
    results.search(next);
  } } },
  field("Service", service), field("Operation", operation), field("Tags", tags),
  field("Min duration", minDuration), field("Max duration", maxDuration),
  field("Time", lookback), custom,
  el("label", { class: "field checkbox" }, errors, el("span", null, "Errors only")),
  field("Limit", limit), field("Sort", order),
  el("button", { type: "submit", class: "primary" }, "Find traces"));

  const results = resultsView();
  replace(main, el("section", { class: "search-page" }, el("h1", null, "Search traces"), form, results.node));
  // Back and forward restore an earlier search: the URL is the state.
  window.addEventListener("popstate", () => location.reload());
  results.search(q);
  every(POLL_MS, () => results.refresh());
}

function resultsView() {
  const status = el("p", { class: "status muted" });
  const plot = el("div", { class: "scatter" });
  const list = el("ol", { class: "results" });
  const node = el("div", null, status, plot, list);
  let current = null;
  let shown = new Set();
  let fingerprint = "";

  async function run(firstRound) {
    let params;
    try {
      params = apiParams(current);
    } catch (e) {
      replace(status, notice(e.message, "error"));
      return;
    }
    let traces;
    try {
      traces = await api.searchTraces(params);
    } catch (e) {
      replace(status, notice(`Search failed: ${e.message}`, "error"));
      replace(plot);
      replace(list);
      return;
    }
    const found = traces.map(summarise);
    const print = found.map((t) => `${t.traceID}:${t.spanCount}:${t.duration}`).join(",");
    const time = new Date().toLocaleTimeString();
    if (print === fingerprint && !firstRound) {
      status.textContent = `${found.length} trace${found.length === 1 ? "" : "s"} · checked ${time}`;
      return;
    }
    fingerprint = print;
    const fresh = firstRound ? new Set() : new Set(found.map((t) => t.traceID).filter((id) => !shown.has(id)));
    shown = new Set(found.map((t) => t.traceID));
    status.textContent = `${found.length} trace${found.length === 1 ? "" : "s"}` +
      (fresh.size ? ` · ${fresh.size} new` : "") + ` · updated ${time}`;
    replace(plot, scatter(found));
    replace(list, found.length ? found.map((t) => resultItem(t, found, fresh.has(t.traceID))) : notice("No traces match."));
  }

  return {
    node,
    search(q) {
      current = q;
      fingerprint = "";
      shown = new Set();
      return run(true);
    },
    refresh() {
      return current ? run(false) : null;
    },
  };
}

function resultItem(t, all, fresh) {
  const longest = Math.max(1, ...all.map((x) => x.duration));
  const chips = [...t.services.entries()].sort((a, b) => b[1] - a[1]).map(([s, n]) => serviceChip(s, n));
  return el("li", { class: fresh ? "result fresh" : "result", dataset: { traceId: t.traceID, duration: String(t.duration) } },
    el("a", { href: traceHref(t.traceID), class: "result-link" },
      el("div", { class: "result-head" },
        el("span", { class: "result-title" },
          el("strong", null, t.service), ": ", t.operation || "(no root span)"),
        el("span", { class: "trace-id muted" }, t.traceID.slice(0, 12)),
        el("span", { class: "result-duration" }, formatMicros(t.duration))),
      el("div", { class: "bar-track" },
        el("div", { class: t.errors ? "bar error" : "bar", style: { width: `${Math.max(0.5, (100 * t.duration) / longest)}%` } })),
      el("div", { class: "result-meta" },
        el("span", null, `${t.spanCount} span${t.spanCount === 1 ? "" : "s"}`),
        t.errors ? el("span", { class: "badge error" }, `${t.errors} error${t.errors === 1 ? "" : "s"}`) : null,
        chips,
        el("span", { class: "muted right", title: formatTime(t.start) }, `${formatTime(t.start)} (${formatAgo(t.start)})`))));
}

/** Duration over start time, one dot per trace; a click opens it. */
function scatter(found) {
  if (!found.length) return null;
  const W = 1200, H = 200, L = 64, R = 12, T = 12, B = 26;
  let t0 = Math.min(...found.map((t) => t.start));
  let t1 = Math.max(...found.map((t) => t.start));
  if (t1 === t0) { t0 -= 1e6; t1 += 1e6; }
  const dMax = Math.max(1, ...found.map((t) => t.duration));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (d) => H - B - (d / dMax) * (H - T - B);
  const dots = found.map((t) => svg("circle", {
    class: t.errors ? "dot error" : "dot",
    cx: x(t.start).toFixed(1), cy: y(t.duration).toFixed(1), r: 5,
    dataset: { traceId: t.traceID },
    on: { click: () => { location.href = traceHref(t.traceID); } },
  }, svg("title", null, `${t.service}: ${t.operation} · ${formatMicros(t.duration)} · ${formatTime(t.start)}`)));
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "scatter-plot", role: "img", "aria-label": "Trace duration over time" },
    svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    svg("text", { class: "tick", x: L - 6, y: T + 10, "text-anchor": "end" }, formatMicros(dMax)),
    svg("text", { class: "tick", x: L - 6, y: H - B, "text-anchor": "end" }, "0"),
    svg("text", { class: "tick", x: L, y: H - 6 }, formatTime(t0)),
    svg("text", { class: "tick", x: W - R, y: H - 6, "text-anchor": "end" }, formatTime(t1)),
    dots);
}
