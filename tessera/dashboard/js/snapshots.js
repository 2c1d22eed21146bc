// Snapshots of a collection (create, download, upload, restore, recover from a URL, delete)
// and the alias table (create, rename, delete).
import { call, enc, send } from "./api.js";
import { attempt, collectionNames, collectionPicker, h, select, toast } from "./ui.js";

function size(bytes) {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(2)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

async function fetchBlob(path) {
  const response = await send("GET", path);
  if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
  return response.blob();
}

async function upload(name, blob, filename) {
  const form = new FormData();
  form.append("snapshot", blob, filename);
  await call("POST", `/collections/${enc(name)}/snapshots/upload?wait=true&priority=snapshot`, form);
}

export async function render(root, route) {
  const names = await collectionNames(call);
  const name = route.args[0];
  root.append(h("h2", {}, "Snapshots and aliases"), h("div", { class: "row" }, collectionPicker(names, name, "snapshots")));
  if (name) root.append(await snapshotsPanel(name));
  else root.append(h("p", { class: "muted" }, "Pick a collection for its snapshots."));
  root.append(await aliasesPanel(names), await fullSnapshotsPanel());
}

function downloadBlob(blob, filename) {
  const link = h("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// Snapshots of the whole storage (every collection and alias): global access only.
async function fullSnapshotsPanel() {
  const table = h("table", { id: "full-snapshots-table" });
  const refresh = async () => {
    const list = await call("GET", "/snapshots");
    table.replaceChildren(
      h("tr", {}, ["Full snapshot", "Size", "Created", ""].map((t) => h("th", {}, t))),
      ...list.map((s) => h("tr", {},
        h("td", {}, h("code", {}, s.name)), h("td", { class: "num" }, size(s.size)), h("td", {}, s.creation_time ?? ""),
        h("td", {},
          h("button", { onclick: () => attempt(async () => downloadBlob(await fetchBlob(`/snapshots/${enc(s.name)}`), s.name)) }, "Download"), " ",
          h("button", {
            class: "danger",
            onclick: () => attempt(async () => {
              if (!confirm(`Delete full snapshot ${s.name}?`)) return;
              await call("DELETE", `/snapshots/${enc(s.name)}?wait=true`);
              await refresh();
            }),
          }, "Delete")))));
    if (!list.length) table.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No full snapshot.")));
  };
  const create = () => attempt(async () => {
    const made = await call("POST", "/snapshots?wait=true");
    toast(`Full snapshot ${made.name} created`);
    await refresh();
  });
  const panel = h("div", { class: "panel" }, h("h3", {}, "Full storage snapshots"),
    h("p", { class: "muted" }, "Every collection and alias; restored at start-up with tessera serve --storage-snapshot."),
    h("div", { class: "row" }, h("button", { onclick: create }, "Create full snapshot")), table);
  await attempt(refresh, table);
  return panel;
}

async function snapshotsPanel(name) {
  const base = `/collections/${enc(name)}/snapshots`;
  const table = h("table", { id: "snapshots-table" });
  const refresh = async () => {
    const list = await call("GET", base);
    const rows = list.map((s) => {
      const download = () => attempt(async () => downloadBlob(await fetchBlob(`${base}/${enc(s.name)}`), s.name));
      const restore = () => attempt(async () => {
        if (!confirm(`Replace collection ${name} with snapshot ${s.name}?`)) return;
        await upload(name, await fetchBlob(`${base}/${enc(s.name)}`), s.name);
        toast(`${name} restored from ${s.name}`);
      });
      const remove = () => attempt(async () => {
        if (!confirm(`Delete snapshot ${s.name}?`)) return;
        await call("DELETE", `${base}/${enc(s.name)}?wait=true`);
        toast(`Snapshot ${s.name} deleted`);
        await refresh();
      });
      return h("tr", { "data-snapshot": s.name },
        h("td", {}, h("code", {}, s.name)),
        h("td", { class: "num" }, size(s.size)),
        h("td", {}, s.creation_time ?? ""),
        h("td", {},
          h("button", { onclick: download }, "Download"), " ",
          h("button", { onclick: restore }, "Restore"), " ",
          h("button", { class: "danger", onclick: remove }, "Delete")));
    });
    table.replaceChildren(
      h("tr", {}, ["Snapshot", "Size", "Created", ""].map((t) => h("th", {}, t))),
      ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No snapshot."))]));
  };
  const create = () => attempt(async () => {
    const made = await call("POST", `${base}?wait=true`);
    toast(`Snapshot ${made.name} created`);
    await refresh();
  });
  const file = h("input", { type: "file", id: "snapshot-file" });
  const uploadFile = () => attempt(async () => {
    const chosen = file.files[0];
    if (!chosen) throw new Error("choose a snapshot file first");
    if (!confirm(`Replace collection ${name} with the uploaded snapshot ${chosen.name}?`)) return;
    await upload(name, chosen, chosen.name);
    toast(`${name} restored from ${chosen.name}`);
    await refresh();
  });
  const url = h("input", { placeholder: "http(s):// or file:// URL", class: "grow" });
  const recover = () => attempt(async () => {
    await call("PUT", `${base}/recover?wait=true`, { location: url.value.trim() });
    toast(`${name} recovered from ${url.value}`);
    await refresh();
  });
  await refresh();
  return h("div", { class: "panel" },
    h("h3", {}, "Snapshots of ", h("code", {}, name)),
    h("div", { class: "row" }, h("button", { class: "primary", id: "create-snapshot", onclick: create }, "Create snapshot"),
      h("button", { onclick: () => attempt(refresh) }, "Refresh")),
    table,
    h("div", { class: "row" }, h("span", {}, "Upload and restore:"), file, h("button", { onclick: uploadFile }, "Upload")),
    h("div", { class: "row" }, h("span", {}, "Recover from:"), url, h("button", { onclick: recover }, "Recover")));
}

async function aliasesPanel(names) {
  const table = h("table", { id: "aliases-table" });
  const change = (actions, message) => attempt(async () => {
    await call("POST", "/collections/aliases", { actions });
    toast(message);
    await refresh();
  });
  const refresh = async () => {
    const { aliases } = await call("GET", "/aliases");
    const rows = aliases.map((a) => {
      const rename = () => {
        const to = prompt(`New name for alias ${a.alias_name}:`, a.alias_name);
        if (to && to !== a.alias_name) {
          change([{ rename_alias: { old_alias_name: a.alias_name, new_alias_name: to } }], `Alias renamed to ${to}`);
        }
      };
      return h("tr", {},
        h("td", {}, h("code", {}, a.alias_name)), h("td", {}, a.collection_name),
        h("td", {}, h("button", { onclick: rename }, "Rename"), " ",
          h("button", { class: "danger", onclick: () => change([{ delete_alias: { alias_name: a.alias_name } }], `Alias ${a.alias_name} deleted`) }, "Delete")));
    });
    table.replaceChildren(h("tr", {}, ["Alias", "Collection", ""].map((t) => h("th", {}, t))),
      ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 3, class: "muted" }, "No alias."))]));
  };
  const alias = h("input", { placeholder: "alias", id: "alias-name" });
  const target = select(names, names[0], { id: "alias-collection" });
  const create = () => change(
    [{ create_alias: { alias_name: alias.value.trim(), collection_name: target.value } }],
    `Alias ${alias.value} created`);
  await refresh();
  return h("div", { class: "panel" }, h("h3", {}, "Aliases"), table,
    h("div", { class: "row" }, alias, h("span", {}, "→"), target, h("button", { onclick: create }, "Create or move alias")));
}
