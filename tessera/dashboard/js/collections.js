// Collections: the list (status, points, segments, indexed vectors, vectors, aliases),
// create (form or raw JSON), and one collection's page: config, payload schema and
// indexes, update (PATCH), delete, aliases.
import { call, enc } from "./api.js";
import { attempt, h, jsonBlock, parseJson, pretty, select, toast } from "./ui.js";

const DISTANCES = ["Cosine", "Dot", "Euclid", "Manhattan"];
const INDEX_TYPES = ["keyword", "integer", "float", "bool", "geo", "text", "datetime", "uuid"];

export async function render(root, route) {
  if (route.args[0]) return renderOne(root, route.args[0]);
  return renderList(root);
}

function vectorsSummary(params) {
  const vectors = params?.vectors;
  const parts = [];
  if (vectors && typeof vectors.size === "number") parts.push(`${vectors.size} · ${vectors.distance}`);
  else for (const [name, v] of Object.entries(vectors || {})) parts.push(`${name}: ${v.size} · ${v.distance}`);
  for (const name of Object.keys(params?.sparse_vectors || {})) parts.push(`${name}: sparse`);
  return parts.join(", ") || "—";
}

async function renderList(root) {
  root.append(h("h2", {}, "Collections"));
  const table = h("table", { id: "collections-table" });
  const createPanel = createForm(() => renderListInto(table));
  root.append(
    h("div", { class: "row" },
      h("button", { onclick: () => attempt(() => renderListInto(table), table) }, "Refresh"),
      h("button", { class: "primary", onclick: () => createPanel.toggleAttribute("hidden") }, "Create collection")),
    createPanel,
    table,
  );
  createPanel.hidden = true;
  await renderListInto(table);
}

async function renderListInto(table) {
  const [listing, aliases] = await Promise.all([call("GET", "/collections"), call("GET", "/aliases")]);
  const byCollection = {};
  for (const a of aliases.aliases) (byCollection[a.collection_name] ??= []).push(a.alias_name);
  const names = listing.collections.map((c) => c.name).sort();
  const infos = await Promise.all(
    names.map((name) => call("GET", `/collections/${enc(name)}`).catch((err) => ({ error: err.message }))),
  );
  const head = h("tr", {}, ["Name", "Status", "Points", "Segments", "Indexed vectors", "Vectors", "Payload indexes", "Aliases", ""].map((t) => h("th", {}, t)));
  const rows = names.map((name, i) => {
    const info = infos[i];
    if (info.error) return h("tr", {}, h("td", {}, name), h("td", { colspan: 8 }, info.error));
    const link = `#/collections/${enc(name)}`;
    return h("tr", { "data-collection": name },
      h("td", {}, h("a", { href: link }, name)),
      h("td", {}, h("span", { class: `badge status-${info.status}` }, info.status)),
      h("td", { class: "num points-count" }, info.points_count ?? 0),
      h("td", { class: "num" }, info.segments_count ?? ""),
      h("td", { class: "num" }, info.indexed_vectors_count ?? 0),
      h("td", {}, vectorsSummary(info.config?.params)),
      h("td", {}, Object.keys(info.payload_schema || {}).join(", ") || "—"),
      h("td", {}, (byCollection[name] || []).join(", ") || "—"),
      h("td", {},
        h("a", { href: `#/points/${enc(name)}` }, "points"), " · ",
        h("a", { href: `#/visualize/${enc(name)}` }, "map"), " · ",
        h("a", { href: `#/snapshots/${enc(name)}` }, "snapshots")),
    );
  });
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No collections yet."))));
}

function createForm(done) {
  const name = h("input", { id: "new-name", placeholder: "name", required: true });
  const size = h("input", { id: "new-size", type: "number", min: 1, value: 4, style: "width:6rem" });
  const distance = select(DISTANCES, "Cosine", { id: "new-distance" });
  const onDisk = h("input", { type: "checkbox", id: "new-on-disk" });
  const raw = h("textarea", { id: "new-json" });
  const sync = () => {
    const body = { vectors: { size: Number(size.value), distance: distance.value } };
    if (onDisk.checked) body.vectors.on_disk = true;
    raw.value = pretty(body);
  };
  for (const el of [size, distance, onDisk]) el.addEventListener("input", sync);
  sync();
  const create = async () => {
    await attempt(async () => {
      if (!name.value.trim()) throw new Error("a collection needs a name");
      await call("PUT", `/collections/${enc(name.value.trim())}`, parseJson(raw.value, "body") ?? {});
      toast(`Collection ${name.value} created`);
      name.value = "";
      await done();
    });
  };
  return h("div", { class: "panel", id: "create-panel" },
    h("h3", {}, "New collection"),
    h("div", { class: "row" },
      h("label", {}, "Name ", name),
      h("label", {}, "Vector size ", size),
      h("label", {}, "Distance ", distance),
      h("label", {}, onDisk, " vectors on disk")),
    h("p", { class: "muted" }, "Request body (edit freely: named vectors, sparse vectors, HNSW, quantization…):"),
    raw,
    h("div", { class: "row" }, h("button", { class: "primary", id: "create-collection", onclick: create }, "Create")));
}

async function renderOne(root, name) {
  const path = `/collections/${enc(name)}`;
  const [info, aliases] = await Promise.all([call("GET", path), call("GET", `${path}/aliases`)]);
  root.append(
    h("h2", {}, "Collection ", h("code", {}, name), " ", h("span", { class: `badge status-${info.status}` }, info.status)),
    h("div", { class: "row" },
      h("a", { href: "#/collections" }, "← all collections"), " ",
      h("a", { href: `#/points/${enc(name)}` }, "Browse points"), " ",
      h("a", { href: `#/visualize/${enc(name)}` }, "Visualize"), " ",
      h("a", { href: `#/quality/${enc(name)}` }, "Search quality"), " ",
      h("a", { href: `#/snapshots/${enc(name)}` }, "Snapshots")),
    h("div", { class: "panel" },
      h("div", { class: "row" },
        h("span", {}, h("b", {}, info.points_count ?? 0), " points"),
        h("span", {}, h("b", {}, info.indexed_vectors_count ?? 0), " indexed vectors"),
        h("span", {}, h("b", {}, info.segments_count), " segments"),
        h("span", {}, "aliases: ", aliases.aliases.map((a) => a.alias_name).join(", ") || "—"))),
  );
  root.append(indexPanel(name, info), updatePanel(name, info), h("h3", {}, "Info"), jsonBlock(info), dangerPanel(name));
}

function indexPanel(name, info) {
  const path = `/collections/${enc(name)}`;
  const rows = Object.entries(info.payload_schema || {}).map(([field, schema]) =>
    h("tr", {},
      h("td", {}, h("code", {}, field)),
      h("td", {}, schema.data_type ?? ""),
      h("td", { class: "num" }, schema.points ?? ""),
      h("td", {}, h("code", {}, JSON.stringify(schema.params ?? {}))),
      h("td", {}, h("button", {
        class: "danger",
        onclick: () => attempt(async () => {
          if (!confirm(`Delete the index on ${field}?`)) return;
          await call("DELETE", `${path}/index/${enc(field)}?wait=true`);
          toast(`Index on ${field} deleted`);
          location.reload();
        }),
      }, "Delete"))));
  const field = h("input", { placeholder: "payload key", id: "index-field" });
  const type = select(INDEX_TYPES, "keyword", { id: "index-type" });
  const create = () => attempt(async () => {
    await call("PUT", `${path}/index?wait=true`, { field_name: field.value, field_schema: type.value });
    toast(`Index on ${field.value} created`);
    location.reload();
  });
  return h("div", { class: "panel" },
    h("h3", {}, "Payload schema and indexes"),
    h("table", {}, h("tr", {}, ["Field", "Type", "Points", "Params", ""].map((t) => h("th", {}, t))),
      rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No payload index."))),
    h("div", { class: "row" }, field, type, h("button", { onclick: create }, "Create index")));
}

function updatePanel(name, info) {
  const body = h("textarea", { id: "patch-json" },
    pretty({ optimizers_config: { indexing_threshold: info.config?.optimizer_config?.indexing_threshold ?? 10000 } }));
  const update = () => attempt(async () => {
    await call("PATCH", `/collections/${enc(name)}`, parseJson(body.value, "body") ?? {});
    toast("Collection updated");
    location.reload();
  });
  return h("details", { class: "panel" },
    h("summary", {}, "Update parameters (PATCH)"),
    h("p", { class: "muted" }, "hnsw_config, optimizers_config, params, vectors, quantization_config, sparse_vectors…"),
    body, h("div", { class: "row" }, h("button", { class: "primary", onclick: update }, "Send PATCH")));
}

function dangerPanel(name) {
  const remove = () => attempt(async () => {
    if (!confirm(`Delete collection ${name} and all its points?`)) return;
    await call("DELETE", `/collections/${enc(name)}`);
    toast(`Collection ${name} deleted`);
    location.hash = "#/collections";
  });
  return h("div", { class: "panel" }, h("h3", {}, "Delete"),
    h("button", { class: "danger", id: "delete-collection", onclick: remove }, "Delete this collection"));
}
