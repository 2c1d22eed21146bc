// Visualize: a sample of a collection's vectors (or a query's results) projected to 2-D by
// the server (PCA), drawn on a canvas, colored by a payload field; wheel zooms, drag pans,
// a click on a dot opens the point.
import { call, enc } from "./api.js";
import { pointId } from "./json.js";
import { attempt, h, parseJson, pickedCollection, vectorNames, vectorPicker } from "./ui.js";

const PALETTE = ["#3358d4", "#d6453d", "#1d8a4c", "#b7791f", "#8a4baf", "#0f8a8a", "#d14d8b",
  "#5b6b2f", "#e07b00", "#2f5f8a", "#7a3e2b", "#4b8a2f"];
const OTHER = "#9aa3b2";
const DOT = 3.5;

export async function render(root, route) {
  const name = await pickedCollection(root, route, "Visualize", "visualize", call);
  if (name === null) return;
  const info = await call("GET", `/collections/${enc(name)}`);
  const vectors = vectorNames(info);
  if (!vectors.length) {
    root.append(h("p", { class: "muted", id: "map-status" }, "This collection has no dense vectors to map (sparse vectors only)."));
    return;
  }
  const using = vectorPicker(vectors, "map-using");
  const sample = h("input", { type: "number", id: "map-sample", min: 1, max: 10000, value: 1000, style: "width:6rem" });
  const fields = await payloadKeys(name, info);
  const colorBy = h("input", { id: "map-color", list: "map-fields", placeholder: "payload key", value: fields[0] ?? "" });
  const filter = h("textarea", { id: "map-filter", placeholder: "filter (JSON, optional)", style: "min-height:3rem" });
  const query = h("input", { id: "map-query", placeholder: "point id or vector JSON", style: "width:18rem" });
  const queryLimit = h("input", { type: "number", id: "map-query-limit", min: 1, value: 100, style: "width:5rem" });
  const canvas = h("canvas", { class: "map", id: "map-canvas" });
  const tooltip = h("div", { class: "tooltip" });
  const legend = h("div", { class: "legend", id: "map-legend" });
  const status = h("div", { class: "muted", id: "map-status" });
  const map = new PointMap(canvas, tooltip, (id) => {
    location.hash = `#/points/${enc(name)}?id=${enc(String(id))}`;
  });

  const body = () => {
    const out = { sample: Number(sample.value), using: using.value };
    if (colorBy.value.trim()) out.color_by = colorBy.value.trim();
    const f = parseJson(filter.value, "filter");
    if (f) out.filter = f;
    return out;
  };
  const draw = (result, title) => {
    const colors = map.show(result.points);
    legend.replaceChildren(...colors.map(([label, color]) => h("span", {}, h("i", { style: `background:${color}` }), label)));
    const ev = result.explained_variance.map((v) => `${(v * 100).toFixed(1)}%`).join(" + ");
    status.textContent = `${title}: ${result.sampled} of ${result.matched} points, ${result.dim} dims; the axes explain ${ev} of the variance.`;
  };
  const drawSample = () => attempt(async () => {
    status.textContent = "projecting…";
    const result = await call("POST", `/dashboard/api/collections/${enc(name)}/projection`, body());
    draw(result, "Sample");
  }, status);
  const drawQuery = () => attempt(async () => {
    const text = query.value.trim();
    if (!text) throw new Error("a query needs a point id or a vector");
    let q = pointId(text);
    if (text.startsWith("[") || text.startsWith("{")) q = parseJson(text, "query");
    const request = { query: q, limit: Number(queryLimit.value), with_payload: false };
    if (using.value) request.using = using.value;
    const f = parseJson(filter.value, "filter");
    if (f) request.filter = f;
    const found = await call("POST", `/collections/${enc(name)}/points/query`, request);
    const ids = found.points.map((p) => p.id);
    const shown = ids.map(String);
    if (typeof q !== "object" && !shown.includes(String(q))) ids.unshift(q);
    const projection = body();
    delete projection.filter;
    projection.ids = ids;
    const result = await call("POST", `/dashboard/api/collections/${enc(name)}/projection`, projection);
    draw(result, `Results of the query`);
  }, status);

  root.append(
    h("div", { class: "panel" },
      h("div", { class: "row" },
        h("label", {}, "vector ", using),
        h("label", {}, "sample ", sample),
        h("label", {}, "color by ", colorBy, h("datalist", { id: "map-fields" }, fields.map((f) => h("option", { value: f })))),
        h("button", { class: "primary", id: "map-draw", onclick: drawSample }, "Draw sample"),
        h("button", { onclick: () => map.reset() }, "Reset zoom")),
      filter,
      h("div", { class: "row" },
        h("span", {}, "Map a query's results:"), query, h("label", {}, "limit ", queryLimit),
        h("button", { id: "map-query-draw", onclick: drawQuery }, "Draw results"))),
    status,
    h("div", { class: "map-wrap" }, canvas, tooltip),
    legend,
    h("p", { class: "muted" }, "Wheel: zoom · drag: pan · click a dot: open the point."),
  );
  map.resize();
  await drawSample();
}

// Payload keys to color by: the indexed ones, then the top-level keys of a few points.
async function payloadKeys(name, info) {
  const keys = new Set(Object.keys(info.payload_schema || {}));
  const page = await call("POST", `/collections/${enc(name)}/points/scroll`, { limit: 20, with_payload: true });
  // A payload key as a key path: quoted unless it is a plain name (`first name`, `a.b`).
  const path = (key) => (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key));
  for (const p of page.points) for (const key of Object.keys(p.payload || {})) keys.add(path(key));
  return [...keys];
}

// The colors of values: the most common categories get the palette, the rest grey; numbers
// spread over a blue-to-red scale.
function colorScale(values) {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length && present.every((v) => typeof v === "number")) {
    const lo = Math.min(...present);
    const hi = Math.max(...present);
    const color = (v) => {
      if (typeof v !== "number") return OTHER;
      const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      return `hsl(${Math.round(230 - 230 * t)}, 70%, 48%)`;
    };
    return { color, legend: [[`${lo}`, color(lo)], [`${hi}`, color(hi)]] };
  }
  const counts = new Map();
  for (const v of present) counts.set(String(v), (counts.get(String(v)) || 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, PALETTE.length);
  const assigned = new Map(top.map(([v], i) => [v, PALETTE[i]]));
  const legend = top.map(([v, n]) => [`${v} (${n})`, assigned.get(v)]);
  if (counts.size > top.length || present.length < values.length) legend.push(["other / none", OTHER]);
  return { color: (v) => assigned.get(String(v)) ?? OTHER, legend };
}

export class PointMap {
  constructor(canvas, tooltip, onOpen) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.onOpen = onOpen;
    this.points = [];
    this.view = { scale: 1, dx: 0, dy: 0 };
    this.drag = null;
    canvas.addEventListener("wheel", (e) => this.zoom(e), { passive: false });
    canvas.addEventListener("mousedown", (e) => {
      this.drag = { x: e.offsetX, y: e.offsetY, dx: this.view.dx, dy: this.view.dy, moved: false };
    });
    canvas.addEventListener("mousemove", (e) => this.move(e));
    canvas.addEventListener("mouseup", (e) => {
      const drag = this.drag;
      this.drag = null;
      if (drag && !drag.moved) this.click(e);
    });
    canvas.addEventListener("mouseleave", () => {
      this.drag = null;
      this.tooltip.style.display = "none";
    });
    // Observed on the canvas itself: gone with the page, no listener left on window.
    new ResizeObserver(() => this.resize()).observe(canvas);
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const rect = this.canvas.getBoundingClientRect();
    this.canvas.width = Math.max(1, Math.round(rect.width * ratio));
    this.canvas.height = Math.max(1, Math.round(rect.height * ratio));
    this.ratio = ratio;
    this.draw();
  }

  // Lay the points out to fill the canvas; answers the legend ([label, color] pairs).
  show(points) {
    const scale = colorScale(points.map((p) => p.color));
    const xs = points.map((p) => p.x);
    const ys = points.map((p) => p.y);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    this.bounds = { x0, y0, w: x1 - x0 || 1, h: y1 - y0 || 1 };
    this.points = points.map((p) => ({ ...p, fill: scale.color(p.color) }));
    this.canvas.dataset.points = String(points.length);
    this.reset();
    return scale.legend;
  }

  reset() {
    this.view = { scale: 1, dx: 0, dy: 0 };
    this.draw();
  }

  // Data -> CSS pixels, with a margin, y up.
  toScreen(p) {
    const rect = this.canvas.getBoundingClientRect();
    const m = 20;
    const b = this.bounds;
    const sx = m + ((p.x - b.x0) / b.w) * (rect.width - 2 * m);
    const sy = rect.height - m - ((p.y - b.y0) / b.h) * (rect.height - 2 * m);
    return [sx * this.view.scale + this.view.dx, sy * this.view.scale + this.view.dy];
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.points.length || !this.bounds) return;
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.globalAlpha = 0.8;
    for (const p of this.points) {
      const [x, y] = this.toScreen(p);
      ctx.beginPath();
      ctx.arc(x, y, DOT, 0, Math.PI * 2);
      ctx.fillStyle = p.fill;
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }

  nearest(e) {
    let best = null;
    let bestD = 8 * 8;
    for (const p of this.points) {
      const [x, y] = this.toScreen(p);
      const d = (x - e.offsetX) ** 2 + (y - e.offsetY) ** 2;
      if (d < bestD) {
        best = p;
        bestD = d;
      }
    }
    return best;
  }

  zoom(e) {
    e.preventDefault();
    const factor = e.deltaY < 0 ? 1.2 : 1 / 1.2;
    const v = this.view;
    v.dx = e.offsetX - (e.offsetX - v.dx) * factor;
    v.dy = e.offsetY - (e.offsetY - v.dy) * factor;
    v.scale *= factor;
    this.draw();
  }

  move(e) {
    if (this.drag) {
      const dx = e.offsetX - this.drag.x;
      const dy = e.offsetY - this.drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) this.drag.moved = true;
      this.view.dx = this.drag.dx + dx;
      this.view.dy = this.drag.dy + dy;
      this.draw();
      return;
    }
    const p = this.nearest(e);
    if (!p) {
      this.tooltip.style.display = "none";
      return;
    }
    this.tooltip.textContent = `${p.id}${p.color !== null && p.color !== undefined ? ` · ${p.color}` : ""}`;
    this.tooltip.style.left = `${e.offsetX + 12}px`;
    this.tooltip.style.top = `${e.offsetY + 12}px`;
    this.tooltip.style.display = "block";
  }

  click(e) {
    const p = this.nearest(e);
    if (p) this.onOpen(p.id);
  }
}
