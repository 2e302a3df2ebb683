// Picks the page from the URL; the server answers every UI route with the
// same index.html.
import * as search from "./search.js";
import * as trace from "./trace.js";
import * as graph from "./graph.js";
import * as operations from "./operations.js";
import * as errors from "./errors.js";
import { api } from "./api.js";
import { knowServices, notice, replace } from "./dom.js";

const pages = { search, graph, operations, errors };

function route(path) {
  if (path.startsWith("/trace/")) return ["trace", decodeURIComponent(path.slice("/trace/".length))];
  const name = { "/": "search", "/graph": "graph", "/operations": "operations", "/errors": "errors" }[path];
  return [name, null];
}

const main = document.getElementById("main");
const [name, arg] = route(location.pathname);
for (const a of document.querySelectorAll("nav a")) {
  a.classList.toggle("active", a.dataset.page === name);
}
const page = name === "trace" ? trace : pages[name];
if (!page) {
  replace(main, notice("No such page.", "error"));
} else {
  knowServices(await api.services().catch(() => []));
  page.render(main, arg).catch((e) => replace(main, notice(`Could not load the page: ${e.message}`, "error")));
}
