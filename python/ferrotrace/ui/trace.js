// The trace page (`/trace/{traceID}`): a waterfall of the span tree,
// collapsible, coloured by service, errors marked, the critical path drawn
// over the bars, find/filter, and a detail panel for the selected span.
//
// Rows are virtualised: only the rows in view (plus a margin) exist in the
// DOM, so a trace of 10,000 spans costs the same to draw and scroll as one
// of 50. The tree is kept in flat typed arrays in pre-order, so collapsing,
// filtering and finding are single passes over them.
import { api, every, isError, serviceOf } from "./api.js";
import {
  el, replace, notice, serviceChip, serviceColour,
  formatMicros, formatTime,
} from "./dom.js";

const ROW_H = 24;
const OVERSCAN = 12;
const INDENT_PX = 14;
const MAX_INDENT_LEVELS = 40;
const POLL_MS = 5000;
// A trace still being written (it ended less than this long ago) is polled.
const LIVE_WINDOW_US = 2 * 60 * 1e6;

/** The tree of a Jaeger trace in pre-order (children by start time). */
export function buildModel(trace) {
  const spans = trace.spans || [];
  const n = spans.length;
  const index = new Map();
  spans.forEach((s, i) => index.set(s.spanID, i));
  const parent = new Int32Array(n).fill(-1);
  const children = new Array(n);
  for (let i = 0; i < n; i++) children[i] = [];
  const roots = [];
  let start = Infinity;
  let end = -Infinity;
  for (let i = 0; i < n; i++) {
    const s = spans[i];
    start = Math.min(start, s.startTime);
    end = Math.max(end, s.startTime + s.duration);
    const refs = s.references || [];
    const ref = refs.find((r) => r.refType === "CHILD_OF" && index.has(r.spanID)) ||
      refs.find((r) => index.has(r.spanID));
    const p = ref ? index.get(ref.spanID) : -1;
    if (p >= 0 && p !== i) {
      parent[i] = p;
      children[p].push(i);
    } else {
      roots.push(i);
    }
  }
  const byStart = (a, b) => spans[a].startTime - spans[b].startTime || a - b;
  roots.sort(byStart);
  for (const c of children) if (c.length > 1) c.sort(byStart);

  // Iterative pre-order walk (a trace may be thousands of levels deep).
  const order = new Int32Array(n);
  const depth = new Int32Array(n);
  const seen = new Uint8Array(n);
  let k = 0;
  const walk = (root) => {
    const stack = [root];
    depth[root] = 0;
    while (stack.length) {
      const i = stack.pop();
      if (seen[i]) continue;
      seen[i] = 1;
      order[k++] = i;
      const c = children[i];
      for (let j = c.length - 1; j >= 0; j--) {
        depth[c[j]] = depth[i] + 1;
        stack.push(c[j]);
      }
    }
  };
  for (const r of roots) walk(r);
  // Spans whose parents form a cycle were not reached: shown as roots.
  for (let i = 0; i < n; i++) {
    if (!seen[i]) {
      parent[i] = -1;
      roots.push(i);
      walk(i);
    }
  }
  // Subtree sizes, in pre-order positions, for skipping collapsed subtrees.
  const position = new Int32Array(n);
  for (let p = 0; p < n; p++) position[order[p]] = p;
  const size = new Int32Array(n).fill(1);
  for (let p = n - 1; p >= 0; p--) {
    const i = order[p];
    if (parent[i] >= 0 && position[parent[i]] < p) size[parent[i]] += size[i];
  }
  const service = spans.map((s) => serviceOf(trace, s));
  const error = Uint8Array.from(spans, (s) => (isError(s) ? 1 : 0));
  let maxDepth = 0;
  for (let i = 0; i < n; i++) maxDepth = Math.max(maxDepth, depth[i]);
  return {
    trace, spans, index, parent, children, roots, order, depth, size, service, error,
    start: n ? start : 0, duration: n ? Math.max(1, end - start) : 1, maxDepth,
  };
}

function tagValue(span, key) {
  const t = (span.tags || []).find((t) => t.key === key);
  return t ? t.value : undefined;
}

function readState() {
  const u = new URLSearchParams(location.search);
  return { find: u.get("find") || "", only: u.get("only") === "1", span: u.get("span") || "", critical: u.get("cp") !== "0" };
}

function writeState(s) {
  const u = new URLSearchParams();
  if (s.find) u.set("find", s.find);
  if (s.only) u.set("only", "1");
  if (s.span) u.set("span", s.span);
  if (!s.critical) u.set("cp", "0");
  const qs = u.toString();
  history.replaceState(null, "", location.pathname + (qs ? `?${qs}` : ""));
}

export async function render(main, traceID) {
  replace(main, notice("Loading trace…"));
  const fetchStart = performance.now();
  // The critical path is a decoration: the trace shows without it.
  const pathRequest = api.criticalPath(traceID).catch(() => []);
  let trace;
  try {
    trace = await api.trace(traceID);
  } catch (e) {
    replace(main, notice(e.status === 404 ? `Trace ${traceID} was not found.` : `Could not load trace ${traceID}: ${e.message}`, "error"));
    return;
  }
  const path = await pathRequest;
  const fetchMs = performance.now() - fetchStart;
  const t0 = performance.now();
  const view = new TraceView(main, trace, path);
  // Measured to the first paint of the rows: the figure the browser test
  // reports (README, "Viewing traces").
  requestAnimationFrame(() => {
    const ms = performance.now() - t0;
    main.dataset.renderMs = ms.toFixed(1);
    main.dataset.fetchMs = fetchMs.toFixed(1);
    main.dataset.spanCount = String(view.model.spans.length);
  });
  if (view.model.start + view.model.duration > Date.now() * 1000 - LIVE_WINDOW_US) {
    every(POLL_MS, async () => {
      const latest = await api.trace(traceID);
      if ((latest.spans || []).length !== view.model.spans.length) {
        view.update(latest, await api.criticalPath(traceID).catch(() => []));
      }
    });
  }
}

class TraceView {
  constructor(main, trace, path) {
    this.main = main;
    this.state = readState();
    this.collapsed = new Set();
    this.matches = null;
    this.matchCursor = -1;
    this.build(trace, path);
    this.layout();
    this.applyFind();
    if (this.state.span && this.model.index.has(this.state.span)) {
      this.select(this.model.index.get(this.state.span), true);
    }
  }

  build(trace, path) {
    this.model = buildModel(trace);
    this.critical = new Map();
    for (const seg of path || []) {
      const i = this.model.index.get(seg.span_id);
      if (i === undefined) continue;
      if (!this.critical.has(i)) this.critical.set(i, []);
      this.critical.get(i).push(seg);
    }
  }

  update(trace, path) {
    const selected = this.selected >= 0 ? this.model.spans[this.selected].spanID : null;
    const collapsed = [...this.collapsed].map((i) => this.model.spans[i].spanID);
    this.build(trace, path);
    this.collapsed = new Set(collapsed.map((id) => this.model.index.get(id)).filter((i) => i !== undefined));
    this.selected = selected && this.model.index.has(selected) ? this.model.index.get(selected) : -1;
    replace(this.headerNode, ...this.header());
    this.applyFind();
    if (this.selected >= 0) this.showDetail(this.selected);
  }

  layout() {
    this.selected = -1;
    this.headerNode = el("header", { class: "trace-header" }, ...this.header());
    this.findInput = el("input", {
      type: "search", class: "find", placeholder: "Find in trace: name, service, tag, span id",
      value: this.state.find, "aria-label": "Find in trace",
      on: { input: () => this.debouncedFind(), keydown: (e) => { if (e.key === "Enter") this.step(e.shiftKey ? -1 : 1); } },
    });
    this.onlyBox = el("input", { type: "checkbox", checked: this.state.only, on: { change: () => this.applyFind() } });
    this.cpBox = el("input", { type: "checkbox", checked: this.state.critical, on: { change: () => this.redraw() } });
    this.matchInfo = el("span", { class: "match-info muted" });
    const toolbar = el("div", { class: "toolbar" },
      this.findInput,
      el("button", { type: "button", title: "Previous match (Shift+Enter)", on: { click: () => this.step(-1) } }, "↑"),
      el("button", { type: "button", title: "Next match (Enter)", on: { click: () => this.step(1) } }, "↓"),
      this.matchInfo,
      el("label", { class: "checkbox" }, this.onlyBox, " Only matching"),
      el("label", { class: "checkbox" }, this.cpBox, " Critical path"),
      el("button", { type: "button", on: { click: () => this.collapseAll() } }, "Collapse all"),
      el("button", { type: "button", on: { click: () => { this.collapsed.clear(); this.refreshRows(); } } }, "Expand all"));

    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => el("span", {
      class: "tick", style: { left: `${f * 100}%` },
    }, formatMicros(f * this.model.duration)));
    const columns = el("div", { class: "timeline-columns" },
      el("div", { class: "name-col" }, "Service & operation"),
      el("div", { class: "bar-col ticks" }, ticks));
    this.rowsNode = el("div", { class: "rows" });
    this.scroller = el("div", { class: "timeline-body", tabindex: 0 }, this.rowsNode);
    this.scroller.addEventListener("scroll", () => this.scheduleDraw());
    window.addEventListener("resize", () => this.scheduleDraw());
    this.detailNode = el("aside", { class: "span-detail", hidden: true });
    replace(this.main, el("section", { class: "trace-page" },
      this.headerNode, toolbar,
      el("div", { class: "trace-body" },
        el("div", { class: "timeline" }, columns, this.scroller),
        this.detailNode)));
  }

  header() {
    const m = this.model;
    const root = m.roots.length ? m.spans[m.roots[0]] : null;
    const errors = m.error.reduce((a, b) => a + b, 0);
    const services = new Map();
    for (const s of m.service) services.set(s, (services.get(s) || 0) + 1);
    return [
      el("h1", null, root ? el("span", null, el("strong", null, m.service[m.roots[0]]), ": ", root.operationName) : "Empty trace"),
      el("div", { class: "trace-facts" },
        el("span", null, "Trace ", el("code", null, m.trace.traceID)),
        el("span", null, "Started ", formatTime(m.start)),
        el("span", null, "Duration ", el("strong", null, formatMicros(m.duration))),
        el("span", null, `${m.spans.length} spans`),
        el("span", null, `Depth ${m.maxDepth + 1}`),
        errors ? el("span", { class: "badge error" }, `${errors} error${errors === 1 ? "" : "s"}`) : el("span", { class: "muted" }, "no errors")),
      el("div", { class: "legend" }, [...services.entries()].map(([s, n]) => serviceChip(s, n))),
    ];
  }

  debouncedFind() {
    clearTimeout(this.findTimer);
    this.findTimer = setTimeout(() => this.applyFind(), 120);
  }

  /** Which spans the find text matches (name, service, span id, tags). */
  applyFind() {
    const text = this.findInput.value.trim().toLowerCase();
    this.state.find = this.findInput.value.trim();
    this.state.only = this.onlyBox.checked;
    const m = this.model;
    if (!text) {
      this.matches = null;
      this.matchList = [];
    } else {
      const hit = new Uint8Array(m.spans.length);
      const has = (v) => String(v).toLowerCase().includes(text);
      for (let i = 0; i < m.spans.length; i++) {
        const s = m.spans[i];
        if (has(s.operationName) || has(m.service[i]) || s.spanID.includes(text) ||
            (s.tags || []).some((t) => has(t.key) || has(t.value))) {
          hit[i] = 1;
        }
      }
      this.matches = hit;
      this.matchList = Array.from(m.order).filter((i) => hit[i]);
    }
    this.matchCursor = -1;
    this.matchInfo.textContent = this.matches ? `${this.matchList.length} match${this.matchList.length === 1 ? "" : "es"}` : "";
    this.refreshRows();
  }

  step(delta) {
    if (!this.matchList || !this.matchList.length) return;
    const n = this.matchList.length;
    this.matchCursor = (this.matchCursor + delta + n) % n;
    this.matchInfo.textContent = `${this.matchCursor + 1} of ${n} matches`;
    this.select(this.matchList[this.matchCursor], true);
  }

  /** The rows shown, in order: the pre-order minus collapsed subtrees, or matches and their ancestors. */
  computeVisible() {
    const m = this.model;
    const n = m.spans.length;
    const out = [];
    if (this.matches && this.state.only) {
      const keep = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        if (!this.matches[i]) continue;
        for (let j = i; j >= 0 && !keep[j]; j = m.parent[j]) keep[j] = 1;
      }
      for (let p = 0; p < n; p++) if (keep[m.order[p]]) out.push(m.order[p]);
    } else {
      for (let p = 0; p < n; p++) {
        const i = m.order[p];
        out.push(i);
        if (this.collapsed.has(i)) p += m.size[i] - 1;
      }
    }
    return out;
  }

  refreshRows() {
    this.visible = this.computeVisible();
    this.rowsNode.style.height = `${this.visible.length * ROW_H}px`;
    writeState(this.state);
    this.redraw();
  }

  scheduleDraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  redraw() {
    this.state.critical = this.cpBox.checked;
    writeState(this.state);
    this.drawnRange = null;
    this.draw();
  }

  /** Creates the rows in view; the rest of the list is empty space. */
  draw() {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(this.visible.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const key = `${first}:${last}`;
    if (this.drawnRange === key) return;
    this.drawnRange = key;
    const rows = [];
    for (let r = first; r < last; r++) rows.push(this.row(this.visible[r], r));
    replace(this.rowsNode, rows);
  }

  row(i, r) {
    const m = this.model;
    const s = m.spans[i];
    const service = m.service[i];
    const colour = serviceColour(service);
    const hasChildren = m.children[i].length > 0;
    const collapsed = this.collapsed.has(i);
    const onPath = this.state.critical && this.critical.has(i);
    let cls = "row";
    if (m.error[i]) cls += " error";
    if (i === this.selected) cls += " selected";
    if (this.matches && this.matches[i]) cls += " match";
    if (onPath) cls += " critical";
    const depth = m.depth[i];
    const left = ((s.startTime - m.start) / m.duration) * 100;
    const width = Math.max(0.15, (s.duration / m.duration) * 100);
    // Epoch nanoseconds exceed a double's exact range (about 256 ns steps
    // today): kept inside the span's own bar, a segment of a microsecond
    // trace cannot drift past it.
    const segments = onPath ? this.critical.get(i).flatMap((seg) => {
      const from = Math.max(left, ((seg.start_ns / 1000 - m.start) / m.duration) * 100);
      const to = Math.min(left + width, ((seg.end_ns / 1000 - m.start) / m.duration) * 100);
      if (to <= from) return [];
      return [el("div", {
        class: "cp-seg",
        title: `critical path: ${formatMicros((seg.end_ns - seg.start_ns) / 1000)}`,
        style: { left: `${from}%`, width: `${Math.max(0.1, to - from)}%` },
      })];
    }) : null;
    return el("div", {
      class: cls, role: "row", style: { top: `${r * ROW_H}px` },
      dataset: { spanId: s.spanID },
      on: { click: () => this.select(i, false) },
    },
    el("div", { class: "name-cell", style: { paddingLeft: `${Math.min(depth, MAX_INDENT_LEVELS) * INDENT_PX + 4}px` } },
      depth > MAX_INDENT_LEVELS ? el("span", { class: "depth muted", title: "depth" }, `${depth}`) : null,
      hasChildren
        ? el("button", {
          type: "button", class: "toggle", "aria-expanded": String(!collapsed),
          title: collapsed ? `Expand (${m.size[i] - 1} spans)` : "Collapse",
          on: { click: (e) => { e.stopPropagation(); this.toggle(i); } },
        }, collapsed ? "▸" : "▾")
        : el("span", { class: "toggle-space" }),
      el("span", { class: "swatch", style: { background: colour } }),
      m.error[i] ? el("span", { class: "error-mark", title: "error" }, "!") : null,
      el("span", { class: "svc" }, service),
      el("span", { class: "op" }, s.operationName),
      collapsed ? el("span", { class: "hidden-count muted" }, `+${m.size[i] - 1}`) : null),
    el("div", { class: "bar-cell" },
      el("div", { class: "span-bar", style: { left: `${left}%`, width: `${width}%`, background: colour } }),
      segments,
      el("span", { class: "bar-label", style: left + width > 80 ? { right: `${100 - left + 0.5}%` } : { left: `${left + width + 0.5}%` } },
        formatMicros(s.duration))));
  }

  toggle(i) {
    if (this.collapsed.has(i)) this.collapsed.delete(i);
    else this.collapsed.add(i);
    this.refreshRows();
  }

  collapseAll() {
    const m = this.model;
    this.collapsed = new Set();
    for (let i = 0; i < m.spans.length; i++) if (m.children[i].length && m.parent[i] >= 0) this.collapsed.add(i);
    this.refreshRows();
  }

  /** Selects a span, showing its details; `reveal` expands and scrolls to it. */
  select(i, reveal) {
    this.selected = i;
    this.state.span = this.model.spans[i].spanID;
    if (reveal) {
      let changed = false;
      for (let p = this.model.parent[i]; p >= 0; p = this.model.parent[p]) {
        if (this.collapsed.delete(p)) changed = true;
      }
      if (changed || !this.visible) this.refreshRows();
      const r = this.visible.indexOf(i);
      if (r >= 0) {
        const top = r * ROW_H;
        const h = this.scroller.clientHeight || 600;
        if (top < this.scroller.scrollTop || top > this.scroller.scrollTop + h - ROW_H) {
          this.scroller.scrollTop = Math.max(0, top - h / 3);
        }
      }
    }
    writeState(this.state);
    this.redraw();
    this.showDetail(i);
  }

  showDetail(i) {
    const m = this.model;
    const s = m.spans[i];
    const service = m.service[i];
    const process = (m.trace.processes || {})[s.processID] || { tags: [] };
    const kv = (rows) => el("table", { class: "kv" }, el("tbody", null,
      rows.map(([k, v]) => el("tr", null, el("th", null, k), el("td", null, v)))));
    const tagRows = (tags) => (tags || []).map((t) => [t.key, formatValue(t.value)]);
    const parentIndex = m.parent[i];
    const onPath = this.critical.get(i) || [];
    const pathUs = onPath.reduce((a, seg) => a + (seg.end_ns - seg.start_ns) / 1000, 0);
    const exception = (s.logs || []).find((l) => (l.fields || []).some((f) => f.key === "event" && f.value === "exception"));
    const field = (log, key) => { const f = (log.fields || []).find((f) => f.key === key); return f ? formatValue(f.value) : ""; };
    const events = (s.logs || []).filter((l) => l !== exception);
    replace(this.detailNode,
      el("div", { class: "detail-head" },
        el("h2", null, el("span", { class: "swatch", style: { background: serviceColour(service) } }), s.operationName),
        el("button", { type: "button", class: "close", title: "Close", on: { click: () => this.closeDetail() } }, "×")),
      kv([
        ["Service", service],
        ["Span ID", el("code", null, s.spanID)],
        ["Parent", parentIndex >= 0
          ? el("a", { href: "#", on: { click: (e) => { e.preventDefault(); this.select(parentIndex, true); } } }, `${m.spans[parentIndex].operationName} (${m.spans[parentIndex].spanID})`)
          : "none (root)"],
        ["Kind", String(tagValue(s, "span.kind") || "internal")],
        ["Start", `+${formatMicros(s.startTime - m.start)} · ${formatTime(s.startTime)}`],
        ["Duration", formatMicros(s.duration)],
        ["Status", m.error[i] ? el("span", { class: "badge error" }, "error") : "ok"],
        ["Critical path", onPath.length ? `${formatMicros(pathUs)} of this span's own time is on it` : "not on it"],
      ]),
      m.error[i] ? el("section", { class: "detail-error" },
        el("h3", null, "Error"),
        exception ? kv([["Type", field(exception, "exception.type") || "–"], ["Message", field(exception, "exception.message") || "–"]]) : null,
        exception && field(exception, "exception.stacktrace") ? el("pre", { class: "stack" }, field(exception, "exception.stacktrace")) : null) : null,
      el("section", null, el("h3", null, `Attributes (${(s.tags || []).length})`), kv(tagRows(s.tags))),
      el("section", null, el("h3", null, `Events (${events.length})`),
        events.length ? el("ol", { class: "events" }, events.map((l) => el("li", null,
          el("div", { class: "muted" }, `+${formatMicros(l.timestamp - m.start)}`),
          kv(tagRows(l.fields))))) : el("p", { class: "muted" }, "none")),
      el("section", null, el("h3", null, "Resource"),
        kv([["service.name", String(process.serviceName || service)], ...tagRows(process.tags)])));
    this.detailNode.hidden = false;
  }

  closeDetail() {
    this.detailNode.hidden = true;
    this.selected = -1;
    this.state.span = "";
    writeState(this.state);
    this.redraw();
  }
}

function formatValue(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}
