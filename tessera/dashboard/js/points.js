// Points: scroll a page at a time (never the whole collection) under a filter made of
// key/match rows or raw JSON; payload and vectors shown; edit payload, delete, and "find
// similar" (a query by the point's id).
import { call, enc } from "./api.js";
import { parseJSON, pointId } from "./json.js";
import { attempt, h, parseJson, pickedCollection, pretty, select, shortVector, toast, vectorNames } from "./ui.js";

const PAGE_SIZES = ["10", "20", "50", "100"];
const MATCHES = [
  ["value", "equals"],
  ["any", "is any of (comma-separated)"],
  ["except", "is none of (comma-separated)"],
  ["text", "full-text"],
  ["gte", "≥ (range)"],
  ["lte", "≤ (range)"],
  ["is_empty", "is empty"],
];

export async function render(root, route) {
  const name = await pickedCollection(root, route, "Points", "points", call);
  if (name === null) return;
  const state = { name, offsets: [null], page: 0, similarTo: null };
  // Keys whose index holds text: a value typed there is text even when it looks like a
  // number (a keyword "10115" is not the integer 10115).
  const info = await call("GET", `/collections/${enc(name)}`);
  const textKeys = new Set(Object.entries(info.payload_schema || {})
    .filter(([, schema]) => TEXT_SCHEMAS.has(schema.data_type)).map(([key]) => key));
  // Which vector "Find similar" compares by: the point's first one unless chosen.
  const named = vectorNames(info, true).filter((v) => v);
  const similarUsing = select([["", "its first vector"], ...named.map((v) => [v, v])], "", { id: "similar-using" });
  const results = h("div", { id: "points-list" });
  const status = h("span", { class: "muted", id: "points-status" });
  const rows = h("div", { id: "filter-rows" });
  const raw = h("textarea", { id: "filter-json", placeholder: '{"must": [{"key": "city", "match": {"value": "Berlin"}}]}', style: "min-height:4rem" });
  const limit = select(PAGE_SIZES, "20", { id: "page-size" });
  const withVectors = h("input", { type: "checkbox", id: "with-vectors" });

  const addRow = (key = "", kind = "value", value = "") => {
    const keyInput = h("input", { placeholder: "payload key", value: key, class: "filter-key" });
    const kindSelect = select(MATCHES, kind, { class: "filter-kind" });
    const valueInput = h("input", { placeholder: "value", value, class: "filter-value" });
    const row = h("div", { class: "row filter-row" }, keyInput, kindSelect, valueInput,
      h("button", { onclick: () => row.remove() }, "×"));
    rows.append(row);
  };

  const currentFilter = () => {
    const typed = parseJson(raw.value, "filter");
    if (typed) return typed;
    const must = [];
    for (const row of rows.querySelectorAll(".filter-row")) {
      const key = row.querySelector(".filter-key").value.trim();
      const kind = row.querySelector(".filter-kind").value;
      const text = row.querySelector(".filter-value").value.trim();
      if (!key) continue;
      must.push(condition(key, kind, text, textKeys.has(key)));
    }
    return must.length ? { must } : null;
  };

  const load = () => attempt(async () => {
    state.similarTo = null;
    const filter = currentFilter();
    const body = {
      limit: Number(limit.value),
      offset: state.offsets[state.page],
      with_payload: true,
      with_vector: withVectors.checked,
    };
    if (filter) body.filter = filter;
    const [page, count] = await Promise.all([
      call("POST", `/collections/${enc(name)}/points/scroll`, body),
      call("POST", `/collections/${enc(name)}/points/count`, { filter, exact: true }),
    ]);
    state.offsets[state.page + 1] = page.next_page_offset;
    const shownFrom = state.page * Number(limit.value);
    const shown = page.points.length ? `showing ${shownFrom + 1}–${shownFrom + page.points.length}` : "none shown";
    status.textContent = `${count.count} points match; ${shown}`;
    prev.disabled = state.page === 0;
    next.disabled = page.next_page_offset === null || page.next_page_offset === undefined;
    results.replaceChildren(...page.points.map((p) => pointCard(name, p, { onSimilar: similar, onChanged: load })));
    if (!page.points.length) results.append(h("p", { class: "muted" }, "No points."));
  }, results);

  // The vector a "find similar" compares by, when the point's vectors are not shown: the
  // collection's first named dense vector, else its first sparse one (none: the unnamed one).
  // Without a vector of its own to go by: the collection's first (null: the unnamed one).
  const firstVector = vectorNames(info, true)[0] || null;

  const similar = (point) => attempt(async () => {
    const filter = currentFilter();
    const body = { query: point.id, limit: Number(limit.value), with_payload: true, with_vector: withVectors.checked };
    const using = similarUsing.value || (usingOf(point) ?? firstVector);
    if (using) body.using = using;
    if (filter) body.filter = filter;
    const found = await call("POST", `/collections/${enc(name)}/points/query`, body);
    status.textContent = `${found.points.length} points most similar to ${point.id}`;
    next.disabled = true;
    results.replaceChildren(
      h("div", { class: "row" }, h("b", {}, `Similar to ${point.id}`), h("button", { onclick: load }, "Back to scroll")),
      ...found.points.map((p) => pointCard(name, p, { onSimilar: similar, onChanged: load })));
  }, results);

  const prev = h("button", { onclick: () => { state.page -= 1; load(); }, id: "prev-page" }, "← Previous");
  const next = h("button", { onclick: () => { state.page += 1; load(); }, id: "next-page" }, "Next →");
  const search = () => { state.offsets = [null]; state.page = 0; load(); };
  limit.addEventListener("change", search);
  withVectors.addEventListener("change", load);
  addRow();
  const lookup = h("input", { placeholder: "point id", id: "point-id", style: "width:16rem" });
  const open = () => attempt(async () => {
    const id = pointId(lookup.value);
    const point = await call("GET", `/collections/${enc(name)}/points/${enc(String(id))}`);
    status.textContent = `point ${point.id}`;
    results.replaceChildren(pointCard(name, point, { onSimilar: similar, onChanged: load }));
  }, results);

  root.append(
    h("div", { class: "panel" },
      h("h3", {}, "Filter"), rows,
      h("div", { class: "row" }, h("button", { onclick: () => addRow() }, "+ condition"),
        h("span", { class: "muted" }, "or a raw JSON filter (used when not empty):")),
      raw,
      h("div", { class: "row" },
        h("button", { class: "primary", id: "scroll-button", onclick: search }, "Scroll"),
        h("label", {}, "page size ", limit),
        h("label", {}, withVectors, " show vectors"),
        named.length > 1 ? h("label", {}, "similar by ", similarUsing) : null,
        h("span", { class: "grow" }),
        lookup, h("button", { onclick: open }, "Open point"))),
    h("div", { class: "row" }, prev, next, status),
    results,
  );
  const wanted = route.query.get("id");
  if (wanted !== null) {
    lookup.value = wanted;
    await open();
  } else {
    await load();
  }
}

function usingOf(point) {
  const v = point.vector;
  if (v && typeof v === "object" && !Array.isArray(v)) {
    const dense = Object.keys(v).filter((k) => Array.isArray(v[k]));
    return dense[0] || null;
  }
  return null;
}

// A typed value: JSON where it reads as JSON (42, true, "quoted text"), else the text.
function typedValue(text) {
  try {
    return parseJSON(text);
  } catch {
    return text;
  }
}

// A value for a text-indexed key: the text, without the quotes it may be typed in.
function textValue(text) {
  const quoted = /^"(.*)"$/.exec(text);
  return quoted ? quoted[1] : text;
}

const TEXT_SCHEMAS = new Set(["keyword", "uuid", "text"]);

export function condition(key, kind, text, asText = false) {
  const typed = asText ? textValue : typedValue;
  const list = () => text.split(",").map((s) => typed(s.trim())).filter((s) => s !== "");
  switch (kind) {
    case "any": return { key, match: { any: list() } };
    case "except": return { key, match: { except: list() } };
    case "text": return { key, match: { text } };
    case "gte": return { key, range: { gte: Number(text) } };
    case "lte": return { key, range: { lte: Number(text) } };
    case "is_empty": return { is_empty: { key } };
    default: return { key, match: { value: typed(text) } };
  }
}

export function pointCard(name, point, { onSimilar, onChanged }) {
  const path = `/collections/${enc(name)}/points`;
  const payloadView = h("pre", { class: "payload" }, pretty(point.payload ?? {}));
  const body = h("div", {}, payloadView);
  const edit = () => {
    const area = h("textarea", {}, pretty(point.payload ?? {}));
    const save = () => attempt(async () => {
      const payload = parseJson(area.value, "payload") ?? {};
      await call("PUT", `${path}/payload?wait=true`, { payload, points: [point.id] });
      toast(`Payload of ${point.id} saved`);
      point.payload = payload;
      payloadView.textContent = pretty(payload);
      body.replaceChildren(payloadView);
    });
    body.replaceChildren(area, h("div", { class: "row" },
      h("button", { class: "primary", onclick: save }, "Save payload"),
      h("button", { onclick: () => body.replaceChildren(payloadView) }, "Cancel")));
  };
  const remove = () => attempt(async () => {
    if (!confirm(`Delete point ${point.id}?`)) return;
    await call("POST", `${path}/delete?wait=true`, { points: [point.id] });
    toast(`Point ${point.id} deleted`);
    onChanged();
  });
  return h("div", { class: "card point", "data-id": String(point.id) },
    h("div", { class: "head" },
      h("span", { class: "id" }, String(point.id)),
      point.score !== undefined ? h("span", { class: "badge" }, `score ${Number(point.score).toFixed(4)}`) : null,
      h("span", { class: "grow" }),
      h("button", { onclick: () => onSimilar(point), class: "similar" }, "Find similar"),
      h("button", { onclick: edit }, "Edit payload"),
      h("button", { class: "danger", onclick: remove }, "Delete")),
    body,
    point.vector !== undefined && point.vector !== null ? h("div", { class: "vector" }, shortVector(point.vector)) : null);
}
