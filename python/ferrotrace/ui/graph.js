// The service graph page (`/graph`): services as boxes in layers (callers
// left of callees), calls as arrows labelled with their count and error
// rate, and the same edges as a table. Refreshed as traces arrive.
import { api, every } from "./api.js";
import { el, svg, replace, notice, serviceColour, formatPercent } from "./dom.js";

const POLL_MS = 5000;
const NODE_W = 170, NODE_H = 46, GAP_X = 180, GAP_Y = 28, PAD = 24;

/** Layer of each service: the longest chain of callers above it (cycles cut). */
function layers(services, edges) {
  const layer = new Map(services.map((s) => [s, 0]));
  for (let round = 0; round < services.length; round++) {
    let changed = false;
    for (const e of edges) {
      if (e.parent === e.child) continue;
      const want = layer.get(e.parent) + 1;
      if (want > layer.get(e.child) && want < services.length) {
        layer.set(e.child, want);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return layer;
}

function draw(graph) {
  const names = new Set(graph.services.map((s) => s.service));
  for (const e of graph.edges) { names.add(e.parent); names.add(e.child); }
  const services = [...names].sort();
  const info = new Map(graph.services.map((s) => [s.service, s]));
  const layer = layers(services, graph.edges);
  const columns = [];
  for (const s of services) {
    const l = layer.get(s);
    (columns[l] = columns[l] || []).push(s);
  }
  // Fewer crossings: services that take part in calls first, then each
  // column ordered by the mean row of its callers (one barycentre pass).
  const linked = new Set(graph.edges.flatMap((e) => [e.parent, e.child]));
  if (columns[0]) columns[0].sort((a, b) => linked.has(b) - linked.has(a));
  for (let c = 1; c < columns.length; c++) {
    if (!columns[c]) continue;
    const row = new Map(columns[c - 1] ? columns[c - 1].map((s, i) => [s, i]) : []);
    const mean = (s) => {
      const rows = graph.edges.filter((e) => e.child === s && row.has(e.parent)).map((e) => row.get(e.parent));
      return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : Infinity;
    };
    const key = new Map(columns[c].map((s) => [s, mean(s)]));
    columns[c].sort((a, b) => key.get(a) - key.get(b) || (a < b ? -1 : 1));
  }
  const pos = new Map();
  columns.forEach((col, x) => (col || []).forEach((s, y) => pos.set(s, {
    x: PAD + x * (NODE_W + GAP_X), y: PAD + y * (NODE_H + GAP_Y),
  })));
  const width = PAD * 2 + columns.length * (NODE_W + GAP_X) - GAP_X;
  const height = PAD * 2 + Math.max(...columns.map((c) => (c || []).length)) * (NODE_H + GAP_Y) - GAP_Y + 20;

  const edges = graph.edges.map((e) => {
    const a = pos.get(e.parent), b = pos.get(e.child);
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2;
    const x2 = b.x, y2 = b.y + NODE_H / 2;
    const back = x2 <= x1;
    const d = back
      ? `M${a.x + NODE_W / 2},${a.y + NODE_H} C${a.x + NODE_W / 2},${a.y + NODE_H + 60} ${b.x + NODE_W / 2},${b.y + NODE_H + 60} ${b.x + NODE_W / 2},${b.y + NODE_H}`
      : `M${x1},${y1} C${x1 + GAP_X / 2},${y1} ${x2 - GAP_X / 2},${y2} ${x2},${y2}`;
    const lx = back ? (a.x + b.x + NODE_W) / 2 : (x1 + x2) / 2;
    const ly = back ? Math.max(a.y, b.y) + NODE_H + 48 : (y1 + y2) / 2 - 6;
    const failing = e.errorCount > 0;
    return svg("g", { class: failing ? "edge failing" : "edge", dataset: { parent: e.parent, child: e.child } },
      svg("path", { d, "marker-end": failing ? "url(#arrow-error)" : "url(#arrow)" }),
      svg("text", { x: lx, y: ly, "text-anchor": "middle", class: "edge-label" },
        `${e.callCount} call${e.callCount === 1 ? "" : "s"}` + (failing ? ` · ${formatPercent(e.errorRate)} errors` : "")),
      svg("title", null, `${e.parent} → ${e.child}: ${e.callCount} calls, ${e.errorCount} failed`));
  });
  const nodes = services.map((s) => {
    const p = pos.get(s);
    const n = info.get(s);
    const label = s.length > 22 ? `${s.slice(0, 21)}…` : s;
    return svg("g", { class: "node", dataset: { service: s }, on: { click: () => { location.href = `/?service=${encodeURIComponent(s)}`; } } },
      svg("rect", { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6, style: { stroke: serviceColour(s) } }),
      svg("rect", { x: p.x, y: p.y, width: 6, height: NODE_H, style: { fill: serviceColour(s) } }),
      svg("text", { x: p.x + 14, y: p.y + 19, class: "node-name" }, label),
      svg("text", { x: p.x + 14, y: p.y + 36, class: "node-stats" },
        n ? `${n.spanCount} spans · ${n.errorCount} errors` : "no spans of its own"),
      svg("title", null, s));
  });
  const marker = (id) => svg("marker", { id, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M0,0 L10,5 L0,10 z" }));
  return svg("svg", { class: "graph", viewBox: `0 0 ${Math.max(width, 300)} ${Math.max(height, 120)}`, width: Math.max(width, 300), role: "img", "aria-label": "Service graph" },
    svg("defs", null, marker("arrow"), marker("arrow-error")), edges, nodes);
}

function table(graph) {
  return el("table", { class: "data edges" },
    el("thead", null, el("tr", null, ["Caller", "Callee", "Calls", "Failed", "Error rate"].map((h) => el("th", null, h)))),
    el("tbody", null, graph.edges.map((e) => el("tr", { class: e.errorCount ? "failing" : null },
      el("td", null, e.parent), el("td", null, e.child), el("td", { class: "num" }, String(e.callCount)),
      el("td", { class: "num" }, String(e.errorCount)), el("td", { class: "num" }, formatPercent(e.errorRate))))));
}

export async function render(main) {
  const body = el("div", null, notice("Loading…"));
  replace(main, el("section", { class: "graph-page" },
    el("h1", null, "Service graph"),
    el("p", { class: "muted" }, "Calls between services in every indexed trace; a click on a service searches its traces."),
    body));
  let last = "";
  const load = async () => {
    const graph = await api.serviceGraph();
    const print = JSON.stringify(graph);
    if (print === last) return;
    last = print;
    if (!graph.services.length) {
      replace(body, notice("No traces yet."));
    } else if (!graph.edges.length) {
      replace(body, el("div", { class: "graph-wrap" }, draw(graph)), notice("No calls between services yet."));
    } else {
      replace(body, el("div", { class: "graph-wrap" }, draw(graph)), table(graph));
    }
  };
  await load().catch((e) => replace(body, notice(`Could not load the graph: ${e.message}`, "error")));
  every(POLL_MS, load);
}
