// Graph: the neighbourhood of points, as Qdrant's web UI explores it: a point and its nearest
// neighbours as a graph (edges labelled by similarity), each node clicked (or named below)
// adds its own neighbours. Laid out by a small force simulation on a canvas.
import { call, enc } from "./api.js";
import { pointId } from "./json.js";
import { attempt, collectionVectorPicker, h, parseJson, pickedCollection } from "./ui.js";

const RADIUS = 7;

export async function render(root, route) {
  const name = await pickedCollection(root, route, "Graph", "graph", call);
  if (name === null) return;
  const using = await collectionVectorPicker(name, call, "graph-using");
  const start = h("input", { id: "graph-start", placeholder: "point id (empty: the first point)", style: "width:16rem" });
  start.value = route.query.get("id") ?? "";
  const limit = h("input", { type: "number", id: "graph-limit", min: 1, max: 50, value: 5, style: "width:4rem" });
  const filter = h("textarea", { id: "graph-filter", placeholder: "filter for the neighbours (JSON, optional)", style: "min-height:3rem" });
  const canvas = h("canvas", { class: "map", id: "graph-canvas" });
  const tooltip = h("div", { class: "tooltip" });
  const status = h("div", { class: "muted", id: "graph-status" });
  const graph = new NeighbourGraph(canvas, tooltip, (id) => expand(id));

  const expand = (id) => attempt(async () => {
    const body = { query: id, limit: Number(limit.value) || 5, with_payload: true };
    if (using.value) body.using = using.value;
    const f = parseJson(filter.value, "filter");
    if (f) body.filter = f;
    const found = await call("POST", `/collections/${enc(name)}/points/query`, body);
    graph.expand(id, found.points);
    status.textContent = `${graph.nodes.size} points, ${graph.edges.length} edges; click a point to add its neighbours`;
  }, status);
  const restart = () => attempt(async () => {
    graph.clear();
    let id = start.value.trim() ? pointId(start.value) : null;
    if (id === null) {
      const page = await call("POST", `/collections/${enc(name)}/points/scroll`, { limit: 1, with_payload: true });
      if (!page.points.length) throw new Error("the collection has no points");
      id = page.points[0].id;
      graph.add(id, page.points[0].payload);
    } else {
      const point = await call("GET", `/collections/${enc(name)}/points/${enc(String(id))}`);
      graph.add(point.id, point.payload);
    }
    await expand(id);
  }, status);

  root.append(
    h("div", { class: "panel" },
      h("div", { class: "row" },
        h("label", {}, "vector ", using), h("label", {}, "start at ", start),
        h("label", {}, "neighbours per point ", limit),
        h("button", { class: "primary", id: "graph-draw", onclick: restart }, "Draw")),
      filter),
    status,
    h("div", { class: "map-wrap" }, canvas, tooltip),
  );
  await restart();
}

// Nodes (by id) and edges, laid out by springs along edges and repulsion between nodes.
class NeighbourGraph {
  constructor(canvas, tooltip, onExpand) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.onExpand = onExpand;
    this.clear();
    canvas.addEventListener("click", (e) => {
      const node = this.at(e);
      if (node) this.onExpand(node.id);
    });
    canvas.addEventListener("mousemove", (e) => {
      const node = this.at(e);
      tooltip.style.display = node ? "block" : "none";
      if (node) {
        tooltip.textContent = `${node.id} ${JSON.stringify(node.payload ?? {}).slice(0, 160)}`;
        tooltip.style.left = `${e.offsetX + 12}px`;
        tooltip.style.top = `${e.offsetY + 12}px`;
      }
    });
  }

  clear() {
    this.nodes = new Map();
    this.edges = [];
    this.canvas.dataset.nodes = "0";
    this.draw();
  }

  add(id, payload, near) {
    const key = String(id);
    if (this.nodes.has(key)) return this.nodes.get(key);
    const angle = Math.random() * 2 * Math.PI;
    const x = (near?.x ?? 0) + Math.cos(angle) * 60;
    const y = (near?.y ?? 0) + Math.sin(angle) * 60;
    const node = { id, payload, x, y, vx: 0, vy: 0 };
    this.nodes.set(key, node);
    this.canvas.dataset.nodes = String(this.nodes.size);
    return node;
  }

  expand(id, neighbours) {
    const from = this.add(id, undefined);
    for (const point of neighbours) {
      if (String(point.id) === String(id)) continue;
      const to = this.add(point.id, point.payload, from);
      const seen = this.edges.some((e) => (e.a === from && e.b === to) || (e.a === to && e.b === from));
      if (!seen) this.edges.push({ a: from, b: to, score: point.score });
    }
    this.canvas.dataset.edges = String(this.edges.length);
    this.settle(200);
  }

  settle(steps) {
    const nodes = [...this.nodes.values()];
    for (let step = 0; step < steps; step++) {
      for (const a of nodes) {
        for (const b of nodes) {
          if (a === b) continue;
          const dx = a.x - b.x || 0.01;
          const dy = a.y - b.y || 0.01;
          const d2 = dx * dx + dy * dy;
          const push = 900 / d2;
          a.vx += dx * push;
          a.vy += dy * push;
        }
      }
      for (const { a, b } of this.edges) {
        const dx = b.x - a.x;
        const dy = b.y - a.y;
        const d = Math.sqrt(dx * dx + dy * dy) || 1;
        const pull = (d - 80) * 0.02;
        a.vx += (dx / d) * pull;
        a.vy += (dy / d) * pull;
        b.vx -= (dx / d) * pull;
        b.vy -= (dy / d) * pull;
      }
      for (const n of nodes) {
        n.x += Math.max(-20, Math.min(20, n.vx));
        n.y += Math.max(-20, Math.min(20, n.vy));
        n.vx *= 0.5;
        n.vy *= 0.5;
      }
    }
    this.draw();
  }

  view() {
    const nodes = [...this.nodes.values()];
    const xs = nodes.map((n) => n.x);
    const ys = nodes.map((n) => n.y);
    const [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 1)];
    const [y0, y1] = [Math.min(...ys, 0), Math.max(...ys, 1)];
    const width = this.canvas.clientWidth || 800;
    const height = this.canvas.clientHeight || 560;
    const scale = Math.min((width - 60) / (x1 - x0 || 1), (height - 60) / (y1 - y0 || 1), 3);
    return { scale, x0, y0, width, height,
      at: (n) => [30 + (n.x - x0) * scale, 30 + (n.y - y0) * scale] };
  }

  at(event) {
    const { at } = this.view();
    for (const node of this.nodes.values()) {
      const [x, y] = at(node);
      if ((x - event.offsetX) ** 2 + (y - event.offsetY) ** 2 <= (RADIUS + 3) ** 2) return node;
    }
    return null;
  }

  draw() {
    const { width, height, at } = this.view();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = width * ratio;
    this.canvas.height = height * ratio;
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    for (const { a, b, score } of this.edges) {
      const [ax, ay] = at(a);
      const [bx, by] = at(b);
      ctx.strokeStyle = "#b8c1d1";
      ctx.beginPath();
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
      ctx.stroke();
      if (typeof score === "number") {
        ctx.fillStyle = "#8a93a3";
        ctx.fillText(score.toFixed(3), (ax + bx) / 2, (ay + by) / 2);
      }
    }
    for (const node of this.nodes.values()) {
      const [x, y] = at(node);
      ctx.fillStyle = "#3358d4";
      ctx.beginPath();
      ctx.arc(x, y, RADIUS, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#1d2330";
      ctx.fillText(String(node.id), x + RADIUS + 2, y - RADIUS);
    }
  }
}
