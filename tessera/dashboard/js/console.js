// Console: any REST request (method, path, JSON body), the answer pretty-printed, a history
// in localStorage and examples of the common calls.
import { send } from "./api.js";
import { parseJSON, toJSON } from "./json.js";
import { h, pretty, select } from "./ui.js";

const HISTORY_KEY = "tessera-console-history";
const HISTORY_MAX = 50;
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];

export const EXAMPLES = [
  ["List collections", "GET", "/collections", null],
  ["Create a collection", "PUT", "/collections/demo", { vectors: { size: 4, distance: "Cosine" } }],
  ["Collection info", "GET", "/collections/demo", null],
  ["Upsert points", "PUT", "/collections/demo/points?wait=true", {
    points: [
      { id: 1, vector: [0.05, 0.61, 0.76, 0.74], payload: { city: "Berlin" } },
      { id: 2, vector: [0.19, 0.81, 0.75, 0.11], payload: { city: "London" } },
      { id: 3, vector: [0.36, 0.55, 0.47, 0.94], payload: { city: "Moscow" } },
    ],
  }],
  ["Query nearest", "POST", "/collections/demo/points/query", { query: [0.2, 0.1, 0.9, 0.7], limit: 3, with_payload: true }],
  ["Query with filter", "POST", "/collections/demo/points/query", {
    query: [0.2, 0.1, 0.9, 0.7], limit: 3,
    filter: { must: [{ key: "city", match: { value: "London" } }] },
  }],
  ["Scroll", "POST", "/collections/demo/points/scroll", { limit: 10, with_payload: true }],
  ["Count", "POST", "/collections/demo/points/count", { exact: true }],
  ["Create payload index", "PUT", "/collections/demo/index?wait=true", { field_name: "city", field_schema: "keyword" }],
  ["Set payload", "POST", "/collections/demo/points/payload?wait=true", { payload: { visited: true }, points: [1] }],
  ["Delete points", "POST", "/collections/demo/points/delete?wait=true", { points: [3] }],
  ["Facet", "POST", "/collections/demo/facet", { key: "city" }],
  ["Create snapshot", "POST", "/collections/demo/snapshots", null],
  ["List aliases", "GET", "/aliases", null],
  ["Delete collection", "DELETE", "/collections/demo", null],
];

// Qdrant's console syntax, as its docs' snippets are written: a `METHOD path` line (the
// leading slash optional), then the JSON body. Several requests may share the text; the
// one the cursor is in (else the first) is sent. null: the text is a bare JSON body.
const REQUEST_LINE = /^\s*(GET|POST|PUT|PATCH|DELETE)\s+(\S+)\s*$/i;

// The text without `//` comments (outside JSON strings), as Qdrant's console allows them.
export function stripComments(text) {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      out += ch;
      if (ch === "\\") out += text[++i] ?? "";
      else if (ch === '"') inString = false;
    } else if (ch === '"') {
      inString = true;
      out += ch;
    } else if (ch === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      if (i < text.length) out += "\n";
    } else {
      out += ch;
    }
  }
  return out;
}

export function parseRequestText(text, cursor = 0) {
  // Comments out, line by line (a comment never spans lines): offsets stay comparable.
  const lines = text.split("\n").map((line) => stripComments(line));
  const starts = [];
  let offset = 0;
  const lineAt = [];
  lines.forEach((line, i) => {
    lineAt.push(offset);
    offset += line.length + 1;
    if (REQUEST_LINE.test(line)) starts.push(i);
  });
  if (!starts.length) return null;
  let chosen = starts[0];
  for (const start of starts) if (lineAt[start] <= cursor) chosen = start;
  const next = starts.find((start) => start > chosen) ?? lines.length;
  const [, method, target] = lines[chosen].match(REQUEST_LINE);
  return {
    method: method.toUpperCase(),
    path: target.startsWith("/") ? target : `/${target}`,
    body: lines.slice(chosen + 1, next).join("\n").trim(),
  };
}

// A request's body as sent (JSON, its numbers kept exact); null once `status` says why the
// text is not JSON.
export function jsonBody(text, status) {
  try {
    return toJSON(parseJSON(text));
  } catch (err) {
    status.textContent = `The body is not JSON: ${err.message}`;
    return null;
  }
}

// An answer's text as shown: pretty-printed when it is JSON, else as it came.
export function shownAnswer(raw) {
  try {
    return pretty(parseJSON(raw));
  } catch {
    return raw;
  }
}

function loadHistory() {
  try {
    return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
  } catch {
    return [];
  }
}

function remember(entry) {
  const history = loadHistory().filter(
    (e) => !(e.method === entry.method && e.path === entry.path && e.body === entry.body),
  );
  history.unshift(entry);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(history.slice(0, HISTORY_MAX)));
}

export async function render(root, route) {
  const method = select(METHODS, route.query.get("method") || "GET", { id: "console-method" });
  const path = h("input", { id: "console-path", class: "grow", value: route.query.get("path") || "/collections" });
  const body = h("textarea", { id: "console-body", placeholder: "JSON body (POST, PUT, PATCH), or whole requests as Qdrant's console takes them:\nPUT collections/demo\n{ \"vectors\": { \"size\": 4, \"distance\": \"Cosine\" } }", style: "min-height:14rem" });
  const status = h("div", { id: "console-status", class: "muted" });
  const output = h("pre", { id: "console-output" }, "");
  const history = h("ul", { class: "history", id: "console-history" });

  const fill = (m, p, b) => {
    method.value = m;
    path.value = p;
    body.value = b === null || b === undefined ? "" : typeof b === "string" ? b : pretty(b);
  };
  const showHistory = () => {
    history.replaceChildren(...loadHistory().map((e) =>
      h("li", { onclick: () => fill(e.method, e.path, e.body), title: e.body || "" },
        h("span", { class: `method m-${e.method}` }, e.method), e.path)));
  };
  const run = async () => {
    const request = parseRequestText(body.value, body.selectionStart ?? 0);
    if (request) {
      method.value = request.method;
      path.value = request.path;
    }
    let text = request ? request.body : stripComments(body.value).trim();
    if (text) {
      text = jsonBody(text, status);
      if (text === null) return;
    }
    const given = path.value.trim();
    if (given.startsWith("//") || /^[a-z][a-z0-9+.-]*:/i.test(given)) {
      status.textContent = "The console sends requests to this server only: give a path (/collections/…)";
      return;
    }
    const target = given.startsWith("/") ? given : `/${given}`;
    status.textContent = "…";
    const started = performance.now();
    try {
      const response = await send(method.value, target, text && method.value !== "GET" ? text : undefined);
      const ms = (performance.now() - started).toFixed(1);
      const raw = await response.text();
      status.textContent = `${response.status} ${response.statusText} · ${ms} ms · ${raw.length} bytes`;
      status.dataset.status = String(response.status);
      output.textContent = shownAnswer(raw);
      remember({ method: method.value, path: target, body: request ? request.body : body.value.trim() });
      showHistory();
    } catch (err) {
      status.textContent = `Request failed: ${err.message}`;
    }
  };
  body.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run();
  });
  const examples = h("div", { class: "examples" }, EXAMPLES.map(([label, m, p, b]) =>
    h("button", { onclick: () => fill(m, p, b), title: `${m} ${p}` }, label)));
  root.append(
    h("h2", {}, "Console"),
    h("div", { class: "split" },
      h("div", {},
        h("div", { class: "row" }, method, path, h("button", { class: "primary", id: "console-send", onclick: run }, "Send")),
        body,
        h("p", { class: "muted" }, "Ctrl+Enter sends (with several METHOD path requests, the one at the cursor). Examples:"),
        examples,
        h("h3", {}, "History"),
        h("div", { class: "row" }, h("button", { onclick: () => { localStorage.removeItem(HISTORY_KEY); showHistory(); } }, "Clear history")),
        history),
      h("div", {}, status, output)),
  );
  if (route.query.get("body")) body.value = route.query.get("body");
  showHistory();
}
