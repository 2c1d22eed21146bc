// The single-page app: hash routes `#/<page>/<collection>?<query>`, one module per page.
import { changeKey } from "./api.js";
import { h, toast } from "./ui.js";
import * as collections from "./collections.js";
import * as points from "./points.js";
import * as consolePage from "./console.js";
import * as visualize from "./visualize.js";
import * as snapshots from "./snapshots.js";
import * as quality from "./quality.js";
import * as explain from "./explain.js";
import * as apiref from "./apiref.js";
import * as jwt from "./jwt.js";
import * as graph from "./graph.js";
import * as tutorial from "./tutorial.js";

const PAGES = {
  collections,
  points,
  console: consolePage,
  tutorial,
  visualize,
  graph,
  snapshots,
  quality,
  explain,
  api: apiref,
  jwt,
};

export function parseHash(hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const [page = "collections", ...rest] = path.split("/").map(decodeURIComponent);
  return { page: page || "collections", args: rest, query: new URLSearchParams(query) };
}

let generation = 0;

async function render() {
  const route = parseHash(location.hash);
  const page = PAGES[route.page] ?? collections;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === route.page);
  }
  const view = document.getElementById("view");
  const mine = ++generation;
  const root = h("div", { class: "page", "data-page": route.page });
  view.replaceChildren(root);
  try {
    await page.render(root, route);
  } catch (err) {
    if (mine !== generation) return;
    const message = err?.status ? `${err.status}: ${err.message}` : String(err?.message ?? err);
    root.append(h("pre", { class: "error" }, message));
    toast(message, true);
  }
}

async function showVersion() {
  try {
    const about = await fetch("/").then((r) => r.json());
    document.getElementById("server-version").textContent = `Qdrant API ${about.version}`;
  } catch {
    // the header line is cosmetic
  }
}

document.getElementById("change-key").addEventListener("click", async () => {
  if (await changeKey()) render();
});
window.addEventListener("hashchange", render);
showVersion();
render();
