// Small DOM helpers shared by the pages.
import { parseJSON, toJSON } from "./json.js";

// h("div", {class: "x", onclick: f}, child, ...): an element; strings become text nodes.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else if (name === "checked") el.checked = Boolean(value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function pretty(value) {
  return toJSON(value, 2);
}

export function jsonBlock(value) {
  return h("pre", { class: "json" }, pretty(value));
}

export function toast(message, isError = false) {
  const el = h("div", { class: "toast" + (isError ? " error" : "") }, message);
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), isError ? 8000 : 3500);
}

// Run `work`, reporting a failure as a toast (and in `where`, when given).
export async function attempt(work, where) {
  try {
    return await work();
  } catch (err) {
    const message = err?.status ? `${err.status}: ${err.message}` : String(err?.message ?? err);
    toast(message, true);
    if (where) where.replaceChildren(h("pre", { class: "error" }, message));
    return undefined;
  }
}

// A JSON textarea's value, parsed; a SyntaxError names the field.
export function parseJson(text, what) {
  if (!text.trim()) return null;
  try {
    return parseJSON(text);
  } catch (err) {
    throw new Error(`${what}: ${err.message}`);
  }
}

export function select(options, value, attrs = {}) {
  return h(
    "select",
    attrs,
    options.map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value }, label);
    }),
  );
}

export function shortVector(vector) {
  if (Array.isArray(vector)) {
    if (vector.length && Array.isArray(vector[0])) return `multivector: ${vector.length} rows`;
    const head = vector.slice(0, 8).map((x) => (typeof x === "number" ? x.toFixed(3) : x));
    return `[${head.join(", ")}${vector.length > 8 ? `, … (${vector.length} dims)` : ""}]`;
  }
  if (vector && typeof vector === "object") {
    if (Array.isArray(vector.indices)) return `sparse: ${vector.indices.length} non-zero`;
    return Object.entries(vector)
      .map(([name, v]) => `${name || "(unnamed)"}: ${shortVector(v)}`)
      .join("\n");
  }
  return String(vector);
}

// The collection names, for pickers.
export async function collectionNames(call) {
  const result = await call("GET", "/collections");
  return result.collections.map((c) => c.name).sort();
}

// A collection picker that navigates to `#/<page>/<name>` on change.
// A page about one collection: its title and the collection picker; the collection's name,
// or null (with a hint) while none is picked.
export async function pickedCollection(root, route, title, page, call) {
  const names = await collectionNames(call);
  const name = route.args[0];
  root.append(h("h2", {}, title), h("div", { class: "row" }, collectionPicker(names, name, page)));
  if (!name) {
    root.append(h("p", { class: "muted" }, "Pick a collection."));
    return null;
  }
  return name;
}

// A picker of `vectors` (names; "" the unnamed one), the first chosen.
export function vectorPicker(vectors, id) {
  return select(vectors.map((v) => [v, v || "(unnamed)"]), vectors[0] ?? "", { id });
}

// The picker of collection `name`'s vectors, dense then sparse (`call`: api.js's).
export async function collectionVectorPicker(name, call, id) {
  const info = await call("GET", `/collections/${encodeURIComponent(name)}`);
  return vectorPicker(vectorNames(info, true), id);
}

export function collectionPicker(names, current, page) {
  return select([["", "— collection —"], ...names], current ?? "", {
    id: "collection-picker",
    onchange: (e) => {
      location.hash = `#/${page}/${encodeURIComponent(e.target.value)}`;
    },
  });
}

// The dense vector names of a collection ("" for the unnamed one); with `sparse`, its sparse
// vector names after them.
export function vectorNames(info, sparse = false) {
  const vectors = info.config.params.vectors;
  const dense = vectors && typeof vectors.size === "number" ? [""] : Object.keys(vectors || {});
  return sparse ? [...dense, ...Object.keys(info.config.params.sparse_vectors || {})] : dense;
}
