// JSON with integers beyond 2^53 kept exact. A JS number holds whole numbers exactly only up
// to 2^53, and point ids go to 2^64 - 1: read as numbers, 18446744073709551615 would be shown,
// edited, deleted and searched as 18446744073709551616. Where the browser gives a number's
// source text to JSON.parse's reviver and can write one back (JSON.rawJSON), such an integer
// is a BigInt here and goes out as the same digits; elsewhere numbers are as JSON.parse makes
// them.
const EXACT = typeof JSON.rawJSON === "function";

export function parseJSON(text) {
  if (!EXACT) return JSON.parse(text);
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && !Number.isSafeInteger(value) && context &&
      /^-?\d+$/.test(context.source)
      ? BigInt(context.source)
      : value);
}

export function toJSON(value, indent) {
  return JSON.stringify(
    value,
    (key, v) => (typeof v === "bigint" ? JSON.rawJSON(v.toString()) : v),
    indent,
  );
}

// A point id typed or given in a link: digits as an exact integer (a BigInt beyond 2^53, where
// it can be written back exactly), anything else as text (a UUID).
export function pointId(text) {
  const raw = String(text).trim();
  if (!/^\d+$/.test(raw)) return raw;
  const n = Number(raw);
  return Number.isSafeInteger(n) || !EXACT ? n : BigInt(raw);
}
