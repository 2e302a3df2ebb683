// The operations page (`/operations`): the table `ferrotrace stats`
// prints, sorted by the server on the column clicked; the service filter
// and the order are in the URL.
import { api, every } from "./api.js";
import { el, replace, notice, serviceChip, formatMillis, formatPercent } from "./dom.js";

const POLL_MS = 5000;
// Column, the server's order name (null: not sortable), cell.
const COLUMNS = [
  ["Service", "name", (r) => serviceChip(r.service)],
  ["Operation", "name", (r) => el("a", { href: `/?service=${encodeURIComponent(r.service)}&operation=${encodeURIComponent(r.operation)}` }, r.operation)],
  ["Count", "count", (r) => String(r.count)],
  ["Errors", "errors", (r) => String(r.error_count)],
  ["Error rate", "errors", (r) => formatPercent(r.error_rate)],
  ["p50", "p50", (r) => formatMillis(r.p50)],
  ["p95", "p95", (r) => formatMillis(r.p95)],
  ["p99", "p99", (r) => formatMillis(r.p99)],
  ["Self time", "self", (r) => (r.self_ms === null ? "–" : formatMillis(r.self_ms))],
  ["Time share", null, (r) => (r.time_share === null ? "–" : formatPercent(r.time_share))],
  ["Total", "total", (r) => formatMillis(r.total_ms)],
];

export async function render(main) {
  const u = new URLSearchParams(location.search);
  const state = { service: u.get("service") || "", order: u.get("order") || "total" };
  const services = await api.services().catch(() => []);
  const select = el("select", { "aria-label": "Service", on: { change: () => { state.service = select.value; save(); load(true); } } },
    el("option", { value: "" }, "All services"), services.map((s) => el("option", { value: s }, s)));
  select.value = state.service;
  const body = el("div", null, notice("Loading…"));
  replace(main, el("section", { class: "operations-page" },
    el("h1", null, "Operations"),
    el("p", { class: "muted" }, "Per operation: how often it ran and failed, its latency percentiles and its own (self) time. Click a column to sort."),
    el("div", { class: "toolbar" }, el("label", { class: "field" }, el("span", null, "Service"), select)),
    body));
  const save = () => {
    const q = new URLSearchParams();
    if (state.service) q.set("service", state.service);
    if (state.order !== "total") q.set("order", state.order);
    history.replaceState(null, "", `/operations${q.toString() ? `?${q}` : ""}`);
  };
  let last = "";
  const load = async (force) => {
    let rows;
    try {
      rows = await api.operationStats({ service: state.service, order: state.order });
    } catch (e) {
      replace(body, notice(`Could not load operations: ${e.message}`, "error"));
      return;
    }
    const print = JSON.stringify(rows);
    if (print === last && !force) return;
    last = print;
    if (!rows.length) {
      replace(body, notice("No spans yet."));
      return;
    }
    replace(body, el("table", { class: "data sortable" },
      el("thead", null, el("tr", null, COLUMNS.map(([label, order]) => el("th", {
        class: order === null ? null : order === state.order ? "sorted" : "sort",
        "aria-sort": order && order === state.order ? (order === "name" ? "ascending" : "descending") : null,
      }, order === null ? label : el("button", { type: "button", on: { click: () => { state.order = order; save(); load(true); } } }, label))))),
      el("tbody", null, rows.map((r) => el("tr", { class: r.error_count ? "failing" : null },
        COLUMNS.map(([label, , cell], i) => el("td", { class: i >= 2 ? "num" : null }, cell(r))))))));
  };
  await load(true);
  every(POLL_MS, () => load(false));
}
