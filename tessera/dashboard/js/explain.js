// Explain: a query run with `"explain": true` (Tessera's extension of /points/query); per
// query of the tree, the plan of every segment as a table and the time per stage as a bar.
import { call, enc } from "./api.js";
import { pointId } from "./json.js";
import { attempt, collectionVectorPicker, h, parseJson, pickedCollection } from "./ui.js";

const STAGE_COLORS = {
  filter: "#b7791f", search: "#3358d4", rescore: "#8a4baf", merge: "#1d8a4c",
  fusion: "#c23030", formula: "#c23030", mmr: "#0f766e", read: "#6b7280", fetch: "#64748b",
};

const COLUMNS = [
  ["segment", "segment"], ["points", "points"], ["indexed", "indexed"],
  ["candidates", "candidates"], ["plan", "plan"], ["hnsw_ef", "hnsw_ef"],
  ["quantized", "quantized"], ["rescored", "rescored"], ["walked", "walked"],
  ["scored", "scored"], ["returned", "returned"],
];

// The query field: a point id, a vector (JSON list), or a whole Query API body (JSON object).
function queryBody(text, using, limit, filter, ef, exact) {
  const raw = text.trim();
  let body;
  if (raw.startsWith("{")) body = parseJson(raw, "query body");
  else if (raw.startsWith("[")) body = { query: parseJson(raw, "query vector") };
  else if (/^\d+$/.test(raw)) body = { query: pointId(raw) };
  else if (raw) body = { query: raw }; // a UUID
  else throw new Error("give a point id, a vector or a query body");
  if (body.limit === undefined) body.limit = limit;
  if (using && body.using === undefined && !body.prefetch) body.using = using;
  if (filter && body.filter === undefined) body.filter = filter;
  if (ef || exact) body.params = { ...(body.params || {}), ...(ef ? { hnsw_ef: ef } : {}), ...(exact ? { exact: true } : {}) };
  return { ...body, explain: true };
}

export async function render(root, route) {
  const name = await pickedCollection(root, route, "Explain a query", "explain", call);
  if (name === null) return;
  const using = await collectionVectorPicker(name, call, "explain-using");
  const query = h("textarea", { id: "explain-query", rows: 3, placeholder: 'a point id (42), a vector ([0.1, 0.2, …]) or a Query API body ({"query": …, "prefetch": …})' });
  query.value = route.query.get("id") ?? "";
  const filter = h("textarea", { id: "explain-filter", rows: 3, placeholder: 'filter (optional): {"must": [{"key": "color", "match": {"value": "red"}}]}' });
  const limit = h("input", { type: "number", id: "explain-limit", min: 1, value: 10, style: "width:5rem" });
  const ef = h("input", { type: "number", id: "explain-ef", min: 1, placeholder: "default", style: "width:6rem" });
  const exact = h("input", { type: "checkbox", id: "explain-exact" });
  const summary = h("div", { class: "muted", id: "explain-summary" });
  const output = h("div", { id: "explain-output" });

  const run = () => attempt(async () => {
    const body = queryBody(query.value, using.value, Number(limit.value) || 10,
      parseJson(filter.value, "filter"), Number(ef.value) || 0, exact.checked);
    const result = await call("POST", `/collections/${enc(name)}/points/query`, body);
    const report = result.explain;
    summary.textContent = `${result.points.length} results in ${report.total_ms.toFixed(3)} ms ` +
      `(${report.queries.length} ${report.queries.length === 1 ? "query" : "queries"}; fetch of payloads and vectors ${(report.stages_ms.fetch ?? 0).toFixed(3)} ms)`;
    output.replaceChildren(...report.queries.map(queryReport), h("h3", {}, "Results"),
      h("ol", { id: "explain-results" }, result.points.map((p) => h("li", {}, `${p.id}  (score ${p.score})`))));
  }, output);

  root.append(
    h("div", { class: "panel" },
      h("label", {}, "query ", query),
      h("label", {}, "filter ", filter),
      h("div", { class: "row" },
        h("label", {}, "vector ", using), h("label", {}, "limit ", limit), h("label", {}, "hnsw_ef ", ef),
        h("label", {}, exact, " exact"),
        h("button", { class: "primary", id: "explain-run", onclick: run }, "Explain")),
      h("p", { class: "muted" }, "Runs the query with \"explain\": true (a Tessera extension of /points/query): which plan each segment ran and why, the candidates left by the filter, the ef walked, quantized codes and rescoring, and the time of each stage.")),
    summary, output);
  if (query.value) await run();
}

function queryReport(report) {
  const title = `${report.path}: ${report.query}` + (report.using ? ` on "${report.using}"` : "") +
    (report.limit !== undefined ? `, limit ${report.limit}` : "") + (report.filtered ? ", filtered" : "") +
    (report.exact ? ", exact" : "") + `, ${report.results} results`;
  const rows = report.segments.map((seg) => h("tr", { "data-plan": seg.plan, "data-segment": seg.segment },
    COLUMNS.map(([key]) => {
      const value = seg[key];
      const text = value === undefined ? "–" : typeof value === "boolean" ? (value ? "yes" : "no") : String(value);
      return h("td", { class: key === "plan" ? "plan" : "num" }, text);
    }),
    h("td", { class: "num stages-ms" }, stageText(seg.stages_ms)),
    h("td", { class: "reason" }, seg.reason)));
  return h("section", { class: "explain-query", "data-path": report.path },
    h("h3", {}, title),
    report.note ? h("p", { class: "muted" }, report.note) : null,
    stageBar(report.stages_ms),
    report.segments.length
      ? h("table", { class: "explain-table" },
        h("tr", {}, [...COLUMNS.map(([, label]) => label), "ms per stage", "why"].map((t) => h("th", {}, t))),
        rows)
      : null);
}

function stageText(stages) {
  return Object.entries(stages).map(([stage, ms]) => `${stage} ${ms.toFixed(3)}`).join("\n");
}

// One bar, a part per stage as wide as its share of the query's time; labelled as text.
function stageBar(stages) {
  const entries = Object.entries(stages);
  const total = entries.reduce((sum, [, ms]) => sum + ms, 0);
  const bar = h("div", { class: "stage-bar" });
  for (const [stage, ms] of entries) {
    const part = h("span", { class: "stage", "data-stage": stage, title: `${stage}: ${ms.toFixed(3)} ms` });
    part.style.width = `${total > 0 ? Math.max((ms / total) * 100, 0.5) : 100 / entries.length}%`;
    part.style.background = STAGE_COLORS[stage] ?? "#94a3b8";
    bar.append(part);
  }
  const legend = h("div", { class: "legend stage-legend" }, entries.map(([stage, ms]) => {
    const swatch = h("i");
    swatch.style.background = STAGE_COLORS[stage] ?? "#94a3b8";
    return h("span", {}, swatch, `${stage} ${ms.toFixed(3)} ms`);
  }));
  return h("div", { class: "stages" }, bar, legend);
}
