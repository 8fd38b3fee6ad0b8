/* Sorted time series buffer (parallel arrays, seconds), de-duplicated by event id, capped. */
import { MAX_POINTS } from './constants.js';
import { isNum } from './format.js';

export class Series {
  constructor(fields, cap = MAX_POINTS) {
    this.fields = fields;
    this.cap = cap;
    this.t = [];
    this.id = [];
    this.cols = Object.fromEntries(fields.map((f) => [f, []]));
    this.ids = new Set();
  }

  get length() { return this.t.length; }
  get first() { return this.t.length ? this.t[0] : null; }
  get last() { return this.t.length ? this.t[this.t.length - 1] : null; }

  clear() {
    this.t.length = 0;
    this.id.length = 0;
    for (const f of this.fields) this.cols[f].length = 0;
    this.ids.clear();
  }

  /** Insert one row at its time position; false if the id was seen already. */
  add(id, t, row) {
    if (!isNum(t)) return false;
    if (id != null) { if (this.ids.has(id)) return false; this.ids.add(id); }
    const i = this.insertIndex(t);
    if (i === this.t.length) {
      this.t.push(t); this.id.push(id);
      for (const f of this.fields) this.cols[f].push(row[f] ?? null);
    } else {
      this.t.splice(i, 0, t); this.id.splice(i, 0, id);
      for (const f of this.fields) this.cols[f].splice(i, 0, row[f] ?? null);
    }
    return true;
  }

  /** Index after the last row with time <= t (binary search unless t is the newest). */
  insertIndex(t) {
    const n = this.t.length;
    if (!n || this.t[n - 1] <= t) return n;
    let lo = 0; let hi = n;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.t[mid] <= t) lo = mid + 1; else hi = mid; }
    return lo;
  }

  /** Drop rows older than minT (seconds) and the oldest rows beyond the cap. */
  trim(minT) {
    let k = 0;
    if (minT != null) while (k < this.t.length && this.t[k] < minT) k++;
    k = Math.max(k, this.t.length - this.cap);
    if (k <= 0) return false;
    for (const id of this.id.slice(0, k)) if (id != null) this.ids.delete(id);
    this.t.splice(0, k); this.id.splice(0, k);
    for (const f of this.fields) this.cols[f].splice(0, k);
    return true;
  }
}
