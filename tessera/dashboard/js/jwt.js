// Access: JWTs for `service.jwt_rbac`, made in the browser as Qdrant's web UI makes them:
// HS256, signed with the API key (never sent anywhere: Web Crypto signs it here), with
// global access (read or manage) or access per collection (read, read-write or points
// read-write), optionally an expiry and a `value_exists` condition.
import { call, storedKey } from "./api.js";
import { attempt, collectionNames, h, parseJson, select } from "./ui.js";

const GLOBAL = [["", "per collection (below)"], ["r", "read every collection"], ["m", "manage everything"]];
const PER_COLLECTION = [["r", "read"], ["rw", "read and write"], ["prw", "points read and write (no indexes, snapshots)"]];

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// The claims' JSON, signed: `header.claims.signature`.
export async function signJwt(claims, secret) {
  if (!crypto?.subtle) throw new Error("this page needs a secure context (https or localhost) to sign");
  const encoder = new TextEncoder();
  const header = base64url(encoder.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const body = base64url(encoder.encode(JSON.stringify(claims)));
  const key = await crypto.subtle.importKey(
    "raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(`${header}.${body}`));
  return `${header}.${body}.${base64url(new Uint8Array(signature))}`;
}

export async function render(root) {
  const names = await collectionNames(call);
  const secret = h("input", { type: "password", id: "jwt-secret", class: "grow", autocomplete: "off",
    placeholder: "the API key (service.api_key): the token's signing secret" });
  const stored = storedKey();
  if (stored && stored.split(".").length !== 3) secret.value = stored; // an API key, not a JWT
  const global = select(GLOBAL, "", { id: "jwt-global" });
  const days = h("input", { type: "number", id: "jwt-days", min: 0, value: 30, style: "width:6rem" });
  const rows = h("div", { id: "jwt-rows" });
  const valueExists = h("textarea", { id: "jwt-value-exists", style: "min-height:3rem",
    placeholder: '{"collection": "users", "matches": [{"key": "user", "value": "alice"}]} (optional)' });
  const output = h("pre", { id: "jwt-token" });
  const addRow = (collection = names[0] ?? "", access = "r") => {
    const row = h("div", { class: "row jwt-row" },
      select(names.map((n) => [n, n]), collection, { class: "jwt-collection" }),
      select(PER_COLLECTION, access, { class: "jwt-access" }),
      h("button", { onclick: () => row.remove() }, "×"));
    rows.append(row);
  };
  const claims = () => {
    const out = {};
    if (global.value) {
      out.access = global.value;
    } else {
      out.access = [...rows.querySelectorAll(".jwt-row")].map((row) => ({
        collection: row.querySelector(".jwt-collection").value,
        access: row.querySelector(".jwt-access").value,
      }));
      if (!out.access.length) throw new Error("give global access or at least one collection");
    }
    const life = Number(days.value);
    if (life > 0) out.exp = Math.floor(Date.now() / 1000) + Math.round(life * 86400);
    const condition = parseJson(valueExists.value, "value_exists");
    if (condition) out.value_exists = condition;
    return out;
  };
  const generate = () => attempt(async () => {
    if (!secret.value) throw new Error("the API key signs the token: give it");
    const made = claims();
    output.textContent = await signJwt(made, secret.value);
    output.dataset.claims = JSON.stringify(made);
  }, output);
  const check = () => attempt(async () => {
    const token = output.textContent.trim();
    if (!token) throw new Error("generate a token first");
    const answer = await fetch("/collections", { headers: { authorization: `Bearer ${token}` } });
    const listed = answer.ok ? (await answer.json()).result.collections.map((c) => c.name) : [];
    output.dataset.check = String(answer.status);
    output.append(`\n\n${answer.status}: ${answer.ok ? `lists ${listed.length} collection(s): ${listed.join(", ")}` : await answer.text()}`);
  }, output);
  root.append(
    h("h2", {}, "Access"),
    h("p", { class: "muted" },
      "JSON Web Tokens for role-based access (service.jwt_rbac: true), signed here with the API key."),
    h("div", { class: "panel" },
      h("div", { class: "row" }, h("label", { class: "grow" }, "API key ", secret)),
      h("div", { class: "row" }, h("label", {}, "global access ", global),
        h("label", {}, "expires in (days, 0: never) ", days)),
      h("h3", {}, "Collections"), rows,
      h("div", { class: "row" }, h("button", { onclick: () => addRow() }, "+ collection")),
      h("h3", {}, "Valid while a point exists (optional)"), valueExists,
      h("div", { class: "row" },
        h("button", { class: "primary", id: "jwt-generate", onclick: generate }, "Generate token"),
        h("button", { id: "jwt-check", onclick: check }, "Try it: list collections")),
      output),
  );
  if (names.length) addRow();
}
