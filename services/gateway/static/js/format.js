/* Pure helpers for numbers, timestamps and URLs. Unknown values format as "—". */

export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export const numOrNull = (v) => (isNum(v) ? v : null);
export const fmt = (v, digits = 1) => (isNum(v) ? v.toFixed(digits) : '—');
export const enc = encodeURIComponent;

/** Milliseconds since the epoch from an ISO string or a number; null if unparseable. */
export function parseTs(s) {
  if (typeof s !== 'string' && typeof s !== 'number') return null;
  const t = typeof s === 'number' ? s : Date.parse(s);
  return Number.isFinite(t) ? t : null;
}

export function timeText(iso) {
  const t = parseTs(iso);
  return t == null ? '—' : new Date(t).toLocaleTimeString();
}

export function dateTimeText(iso) {
  const t = parseTs(iso);
  return t == null ? '—' : new Date(t).toLocaleString();
}

/** Append v and drop the oldest entries beyond cap. */
export function pushCapped(arr, v, cap) {
  arr.push(v);
  if (arr.length > cap) arr.splice(0, arr.length - cap);
}
