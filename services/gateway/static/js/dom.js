/* Small DOM helpers. */

export const $ = (id) => document.getElementById(id);

/** Create an element: attrs `class`, `text`, `on<event>` handlers, others as attributes; then children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

/** Set textContent only when it changes (avoids needless live-region announcements and layout). */
export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

/** A status line: class `status-line` plus an optional kind (`success`, `error`), and its text. */
export function setStatus(node, text, kind = '') {
  node.className = kind ? `status-line ${kind}` : 'status-line';
  setText(node, text);
}

export function storageGet(key) {
  try { return localStorage.getItem(key) || ''; } catch { return ''; }
}

export function storageSet(key, value) {
  try { localStorage.setItem(key, value); } catch { /* private mode: not remembered */ }
}
