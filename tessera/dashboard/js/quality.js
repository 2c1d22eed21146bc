// Search quality: recall@k of the HNSW answers against exact search, for random stored
// points as queries, at several `hnsw_ef` values; plotted.
import { call, enc } from "./api.js";
import { attempt, collectionVectorPicker, h, pickedCollection } from "./ui.js";

export async function render(root, route) {
  const name = await pickedCollection(root, route, "Search quality", "quality", call);
  if (name === null) return;
  const using = await collectionVectorPicker(name, call, "quality-using");
  const queries = h("input", { type: "number", id: "quality-queries", min: 1, max: 1000, value: 20, style: "width:5rem" });
  const limit = h("input", { type: "number", id: "quality-limit", min: 1, max: 1000, value: 10, style: "width:5rem" });
  const efs = h("input", { id: "quality-efs", value: "8, 16, 32, 64, 128, 256" });
  const plot = h("canvas", { class: "plot", id: "quality-plot" });
  const table = h("table", { id: "quality-table" });
  const status = h("div", { class: "muted", id: "quality-status" });

  const run = () => attempt(async () => {
    const efValues = efs.value.split(",").map((s) => Number(s.trim())).filter((n) => n > 0);
    if (!efValues.length) throw new Error("give at least one hnsw_ef value");
    status.textContent = "sampling queries…";
    const sample = await call("POST", `/dashboard/api/collections/${enc(name)}/projection`,
      { sample: Number(queries.value), using: using.value });
    const ids = sample.points.map((p) => p.id);
    if (!ids.length) throw new Error("the collection has no points with this vector");
    const batch = (params) => call("POST", `/collections/${enc(name)}/points/query/batch`, {
      searches: ids.map((id) => {
        const q = { query: id, limit: Number(limit.value), params };
        if (using.value) q.using = using.value;
        return q;
      }),
    });
    status.textContent = "exact search…";
    const exact = await batch({ exact: true });
    const truth = exact.map((r) => new Set(r.points.map((p) => String(p.id))));
    const rows = [];
    for (const ef of efValues) {
      status.textContent = `hnsw_ef ${ef}…`;
      const started = performance.now();
      const approx = await batch({ hnsw_ef: ef });
      const ms = (performance.now() - started) / ids.length;
      let sum = 0;
      approx.forEach((r, i) => {
        const want = truth[i];
        const hits = r.points.filter((p) => want.has(String(p.id))).length;
        sum += want.size ? hits / want.size : 1;
      });
      rows.push({ ef, recall: sum / ids.length, ms });
    }
    status.textContent = `recall@${limit.value} over ${ids.length} random stored points as queries`;
    table.replaceChildren(
      h("tr", {}, ["hnsw_ef", "recall", "ms per query"].map((t) => h("th", {}, t))),
      ...rows.map((r) => h("tr", {}, h("td", { class: "num" }, r.ef), h("td", { class: "num recall" }, r.recall.toFixed(4)), h("td", { class: "num" }, r.ms.toFixed(2)))));
    drawPlot(plot, rows);
  }, status);

  root.append(
    h("div", { class: "panel" },
      h("div", { class: "row" },
        h("label", {}, "vector ", using), h("label", {}, "queries ", queries), h("label", {}, "k ", limit),
        h("label", {}, "hnsw_ef values ", efs),
        h("button", { class: "primary", id: "quality-run", onclick: run }, "Measure recall")),
      h("p", { class: "muted" }, "Each query is a stored point (its own vector); the HNSW answer at each ef is compared with exact search (params.exact). Points not yet indexed are searched exactly, so a small or unindexed collection shows recall 1.")),
    status, plot, table);
}

function drawPlot(canvas, rows) {
  const ratio = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  canvas.width = rect.width * ratio;
  canvas.height = rect.height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, rect.width, rect.height);
  const m = { l: 50, r: 20, t: 15, b: 35 };
  const w = rect.width - m.l - m.r;
  const hgt = rect.height - m.t - m.b;
  const logs = rows.map((r) => Math.log2(r.ef));
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  const minRecall = Math.min(0.5, ...rows.map((r) => r.recall));
  const x = (ef) => m.l + (hi > lo ? ((Math.log2(ef) - lo) / (hi - lo)) * w : w / 2);
  const y = (recall) => m.t + (1 - (recall - minRecall) / (1 - minRecall || 1)) * hgt;
  ctx.strokeStyle = "#d9dde3";
  ctx.fillStyle = "#6b7280";
  ctx.font = "12px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const r = minRecall + ((1 - minRecall) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(m.l, y(r));
    ctx.lineTo(m.l + w, y(r));
    ctx.stroke();
    ctx.fillText(r.toFixed(2), 8, y(r) + 4);
  }
  for (const r of rows) ctx.fillText(String(r.ef), x(r.ef) - 8, m.t + hgt + 20);
  ctx.fillText("hnsw_ef (log scale)", m.l + w / 2 - 50, rect.height - 2);
  ctx.strokeStyle = "#3358d4";
  ctx.lineWidth = 2;
  ctx.beginPath();
  rows.forEach((r, i) => (i ? ctx.lineTo(x(r.ef), y(r.recall)) : ctx.moveTo(x(r.ef), y(r.recall))));
  ctx.stroke();
  ctx.fillStyle = "#3358d4";
  for (const r of rows) {
    ctx.beginPath();
    ctx.arc(x(r.ef), y(r.recall), 4, 0, Math.PI * 2);
    ctx.fill();
  }
}
