// The only way the UI makes elements. Text goes in as text nodes and
// attributes are set by name, never through innerHTML: span names, tags,
// services and error messages come from whoever called the traced code,
// and must never become markup (see the README, "Viewing traces").

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

function setProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key === "style") Object.assign(node.style, value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = String(value);
    else if (key === "value" || key === "checked" || key === "selected") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

/** An HTML element: `el("a", {href, class}, "text", child, ...)`. */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  append(node, children);
  return node;
}

/** An SVG element, same shape as `el`. */
export function svg(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setProps(node, props);
  append(node, children);
  return node;
}

/** Replaces a node's children. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** The link to a trace's page (ids are hex, encoded all the same). */
export function traceHref(traceID) {
  return "/trace/" + encodeURIComponent(traceID);
}

/** A duration given in microseconds, in the unit that reads best. */
export function formatMicros(us) {
  if (!Number.isFinite(us)) return "–";
  if (us < 1000) return `${Math.round(us)}µs`;
  return formatMillis(us / 1000);
}

/** A duration given in milliseconds. */
export function formatMillis(ms) {
  if (!Number.isFinite(ms)) return "–";
  if (ms < 1) return `${Math.round(ms * 1000)}µs`;
  if (ms < 10) return `${ms.toFixed(2)}ms`;
  if (ms < 1000) return `${ms.toFixed(1)}ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)}s`;
  return `${(ms / 60000).toFixed(1)}min`;
}

/** A Unix time in microseconds as local date and time. */
export function formatTime(us) {
  const d = new Date(us / 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** How long ago a Unix time in microseconds was. */
export function formatAgo(us) {
  const s = (Date.now() - us / 1000) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}min ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function formatPercent(rate) {
  if (!Number.isFinite(rate)) return "–";
  if (rate === 0) return "0%";
  if (rate < 0.001) return "<0.1%";
  return `${(rate * 100).toFixed(rate < 0.1 ? 1 : 0)}%`;
}

// Distinct colours, handed out to the services in name order, so every page
// gives a service the same colour and few services never share one.
const PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
  "#9c755f", "#ff9da7", "#2f9e9e", "#8cd17d", "#d4a6c8", "#86bcb6",
  "#499894", "#f1ce63", "#a0cbe8", "#ffbe7d",
];
const colours = new Map();

/** Tells the colour scheme every service there is (from /api/services). */
export function knowServices(names) {
  [...names].sort().forEach((name, i) => colours.set(name, PALETTE[i % PALETTE.length]));
}

/** A service's colour: its palette slot, or a hue from a hash of its name
 * for a service that appeared since the page loaded. */
export function serviceColour(service) {
  let c = colours.get(service);
  if (c === undefined) {
    let h = 2166136261;
    for (let i = 0; i < service.length; i++) {
      h ^= service.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    c = `hsl(${(h >>> 0) % 360}, 55%, 55%)`;
    colours.set(service, c);
  }
  return c;
}

/** A coloured dot and the service's name. */
export function serviceChip(service, extra) {
  return el("span", { class: "chip" },
    el("span", { class: "swatch", style: { background: serviceColour(service) } }),
    service, extra === undefined ? null : el("span", { class: "muted" }, ` ${extra}`));
}

/** A message in place of content (loading, empty, failed). */
export function notice(text, kind = "info") {
  return el("p", { class: `notice ${kind}` }, text);
}
