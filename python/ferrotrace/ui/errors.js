// The error groups page (`/errors`): what `ferrotrace errors` prints, the
// same failure grouped by its normalised message, each with a link to the
// trace of its latest occurrence.
import { api, every } from "./api.js";
import { el, replace, notice, serviceChip, traceHref, formatTime, formatAgo } from "./dom.js";

const POLL_MS = 5000;

export async function render(main) {
  const u = new URLSearchParams(location.search);
  let service = u.get("service") || "";
  const services = await api.services().catch(() => []);
  const select = el("select", { "aria-label": "Service", on: { change: () => {
    service = select.value;
    history.replaceState(null, "", service ? `/errors?service=${encodeURIComponent(service)}` : "/errors");
    load(true);
  } } }, el("option", { value: "" }, "All services"), services.map((s) => el("option", { value: s }, s)));
  select.value = service;
  const body = el("div", null, notice("Loading…"));
  replace(main, el("section", { class: "errors-page" },
    el("h1", null, "Error groups"),
    el("p", { class: "muted" }, "Failures grouped by service, operation, type and message (numbers and ids masked), most frequent first."),
    el("div", { class: "toolbar" }, el("label", { class: "field" }, el("span", null, "Service"), select)),
    body));
  let last = "";
  const load = async (force) => {
    let groups;
    try {
      groups = await api.errorGroups({ service });
    } catch (e) {
      replace(body, notice(`Could not load error groups: ${e.message}`, "error"));
      return;
    }
    const print = JSON.stringify(groups);
    if (print === last && !force) return;
    last = print;
    if (!groups.length) {
      replace(body, notice("No errors."));
      return;
    }
    replace(body, el("table", { class: "data error-groups" },
      el("thead", null, el("tr", null, ["Count", "Type", "Message", "Service", "Operation", "Last seen", "First seen", "Example"].map((h) => el("th", null, h)))),
      el("tbody", null, groups.map((g) => el("tr", { dataset: { fingerprint: g.fingerprint } },
        el("td", { class: "num" }, String(g.count)),
        el("td", null, el("code", null, g.type)),
        el("td", { class: "message" }, g.message,
          g.example_message !== g.message ? el("div", { class: "muted" }, "e.g. ", g.example_message) : null),
        el("td", null, serviceChip(g.service)),
        el("td", null, g.operation),
        el("td", { title: formatTime(g.last_seen_ns / 1000) }, formatAgo(g.last_seen_ns / 1000)),
        el("td", null, formatTime(g.first_seen_ns / 1000)),
        el("td", null, el("a", { href: traceHref(g.example_trace_id) }, "trace"))))),
    ));
  };
  await load(true);
  every(POLL_MS, () => load(false));
}
