// Requests to this server. The key (API key or JWT) lives in sessionStorage and goes out as
// `api-key`; a 401/403 asks for one in a dialog and retries.
import { parseJSON, toJSON } from "./json.js";

const KEY_NAME = "tessera-api-key";
const MAX_PROMPTS = 3;

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_NAME);
}

// A key given in the dialog, kept for the tab (an empty one: none).
function useKey(given) {
  if (given.trim()) sessionStorage.setItem(KEY_NAME, given.trim());
  else forgetKey();
}

// One prompt at a time: requests refused together wait for the same answer.
let asking = null;

function askKeyOnce(reason) {
  if (!asking) {
    asking = askKey(reason).finally(() => {
      asking = null;
    });
  }
  return asking;
}

function askKey(reason) {
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  document.getElementById("key-reason").textContent = reason;
  input.value = "";
  return new Promise((resolve) => {
    const form = document.getElementById("key-form");
    const cancel = document.getElementById("key-cancel");
    let settled = false;
    const done = (value) => {
      if (settled) return;
      settled = true;
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("close", onCancel);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      done(input.value);
    };
    const onCancel = () => done(null);
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    // Escape closes the dialog without a click: as Cancel (the requests waiting answer).
    dialog.addEventListener("close", onCancel);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

// The header's "API key" button: give another key for this tab (an empty one forgets it),
// then show the page again with it.
export async function changeKey() {
  const given = await askKeyOnce("Use another API key or JWT in this tab (empty: none).");
  if (given === null) return false;
  useKey(given);
  return true;
}

async function errorText(response) {
  const text = await response.clone().text();
  try {
    const doc = JSON.parse(text);
    return doc?.status?.error ?? text;
  } catch {
    return text || response.statusText;
  }
}

// One request; `body`: a JS value (sent as JSON), a string (sent as is, as JSON), FormData or
// Blob. Answers the fetch Response (any status but an unresolved 401/403).
export async function send(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    const key = storedKey();
    if (key) headers["api-key"] = key;
    let payload;
    if (body instanceof FormData || body instanceof Blob) {
      payload = body;
    } else if (body !== undefined && body !== null && body !== "") {
      headers["content-type"] = "application/json";
      payload = typeof body === "string" ? body : toJSON(body);
    }
    const response = await fetch(path, { method, headers, body: payload });
    if ((response.status !== 401 && response.status !== 403) || attempt >= MAX_PROMPTS) {
      return response;
    }
    const text = await errorText(response);
    // A 403 asks for another key only when it is about the key's access (a read-only key
    // writing); other refusals (a snapshot path outside the snapshots directory) are answers.
    if (response.status === 403 && (!/access/i.test(text) || /global access/i.test(text))) {
      return response; // (a key scoped to some collections asking for all: the key is right)
    }
    // Sent with a key since replaced (another request's prompt answered meanwhile): the
    // refusal is about the old key, so the new one is tried before asking again.
    if (storedKey() !== key) continue;
    const reason = `${response.status}: ${text}`;
    const given = await askKeyOnce(reason);
    if (given === null) return response;
    useKey(given);
  }
}

// The `result` of Qdrant's envelope; ApiError with the server's words otherwise.
export async function call(method, path, body) {
  const response = await send(method, path, body);
  const text = await response.text();
  let doc = null;
  try {
    doc = text ? parseJSON(text) : null;
  } catch {
    doc = null;
  }
  if (!response.ok) {
    const message = doc?.status?.error ?? (text || response.statusText);
    throw new ApiError(response.status, message, doc);
  }
  return doc === null ? text : doc.result;
}

export const enc = encodeURIComponent;
