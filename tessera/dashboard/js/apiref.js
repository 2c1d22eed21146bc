// API reference: /openapi.json (what this server serves), grouped by tag, each operation
// with its parameters and request body schema; "Try" opens it in the console.
import { ApiError, enc, send } from "./api.js";
import { h } from "./ui.js";

const MAX_DEPTH = 3;

export async function render(root) {
  const response = await send("GET", "/openapi.json");
  if (!response.ok) throw new ApiError(response.status, await response.text());
  const spec = await response.json();
  const filter = h("input", { placeholder: "filter operations", id: "api-filter", class: "grow" });
  const list = h("div", { id: "api-list" });
  const byTag = new Map();
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = op.tags?.[0] ?? "Other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ path, method: method.toUpperCase(), op });
    }
  }
  const show = () => {
    const needle = filter.value.toLowerCase();
    list.replaceChildren();
    for (const [tag, ops] of byTag) {
      const shown = ops.filter(({ path, op }) => !needle || `${path} ${op.summary ?? ""}`.toLowerCase().includes(needle));
      if (!shown.length) continue;
      list.append(h("h3", {}, tag), ...shown.map((o) => operation(spec, o)));
    }
  };
  filter.addEventListener("input", show);
  root.append(
    h("h2", {}, spec.info.title, " ", h("span", { class: "muted" }, spec.info.version)),
    h("p", { class: "muted" }, "The routes this server answers, from ", h("a", { href: "/openapi.json", target: "_blank" }, "/openapi.json"), "."),
    h("div", { class: "row" }, filter), list);
  show();
}

function resolve(spec, schema) {
  let s = schema;
  for (let i = 0; s && s.$ref && i < 10; i++) s = spec.components.schemas[s.$ref.split("/").pop()];
  return s ?? {};
}

function schemaTree(spec, schema, depth = 0) {
  const name = schema?.$ref ? schema.$ref.split("/").pop() : null;
  const s = resolve(spec, schema);
  const label = name ?? s.type ?? (s.anyOf || s.oneOf ? "one of" : "value");
  if (depth >= MAX_DEPTH) return h("span", { class: "muted" }, label);
  const parts = [];
  if (s.description) parts.push(h("div", { class: "muted" }, s.description));
  if (s.properties) {
    const required = new Set(s.required || []);
    parts.push(h("ul", { class: "schema" }, Object.entries(s.properties).map(([prop, sub]) =>
      h("li", {}, h("code", {}, prop), required.has(prop) ? " *" : "", " ", schemaTree(spec, sub, depth + 1)))));
  }
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (s[key]) parts.push(h("ul", { class: "schema" }, s[key].map((sub) => h("li", {}, schemaTree(spec, sub, depth + 1)))));
  }
  if (s.items) parts.push(h("span", {}, " of ", schemaTree(spec, s.items, depth + 1)));
  if (s.enum) parts.push(h("span", { class: "muted" }, ` ${s.enum.join(" | ")}`));
  return h("span", {}, h("b", {}, label), parts);
}

function operation(spec, { path, method, op }) {
  const params = (op.parameters || []).map((p) =>
    h("li", {}, h("code", {}, p.name), ` (${p.in}${p.required ? ", required" : ""}) `, p.description ?? ""));
  const body = op.requestBody?.content?.["application/json"]?.schema;
  const tryIt = `#/console?method=${method}&path=${enc(path)}`;
  return h("details", { class: "op", "data-path": path, "data-method": method },
    h("summary", {}, h("span", { class: `method m-${method}` }, method), " ", h("code", {}, path), " ", h("span", { class: "muted" }, op.summary ?? "")),
    h("div", { class: "panel" },
      op.description ? h("p", {}, op.description) : null,
      params.length ? [h("b", {}, "Parameters"), h("ul", {}, params)] : null,
      body ? [h("b", {}, "Request body"), h("div", {}, schemaTree(spec, body))] : null,
      h("div", { class: "row" }, h("a", { href: tryIt }, "Try it in the console")),
      op.operationId ? h("div", { class: "muted" }, `operationId: ${op.operationId}`) : null));
}


