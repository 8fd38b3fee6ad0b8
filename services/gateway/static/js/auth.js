/* Who is logged in, the login view and the logout control.
 *
 * Every API call sends the session cookie (HttpOnly, set by POST /api/v1/auth/login). When the API
 * answers 401 (no session, expired, logged out elsewhere) `needLogin` shows the login view in place of
 * the dashboard; a successful login reloads the page, so every view starts again with the session.
 */
import { $, setText } from './dom.js';

const AUTH = '/api/v1/auth';

export const auth = { user: null, loginShown: false };

/** Show the login view (the API answered 401 with `reason`). */
export function needLogin(reason) {
  if (auth.loginShown) return;
  auth.loginShown = true;
  document.body.classList.add('needs-login');
  $('login-view').hidden = false;
  $('user-info').hidden = true;
  $('logout-button').hidden = true;
  const err = $('login-error');
  err.hidden = !reason || /authentication required/.test(reason);
  setText(err, reason || '');
  $('login-user').focus();
}

/** Show who is logged in, with the logout control. */
export function showUser(me) {
  auth.user = me;
  setText($('user-info'), `${me.username} (${me.role})`);
  $('user-info').hidden = false;
  $('logout-button').hidden = me.via !== 'session';
}

async function postJson(path, body) {
  const res = await fetch(AUTH + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  let data = null;
  try { data = await res.json(); } catch { /* empty body */ }
  return { ok: res.ok, status: res.status, data };
}

async function login(event) {
  event.preventDefault();
  const err = $('login-error');
  const button = $('login-submit');
  button.disabled = true;
  try {
    const r = await postJson('/login', { username: $('login-user').value.trim(), password: $('login-password').value });
    if (r.ok) { window.location.reload(); return; }
    setText(err, (r.data && typeof r.data.detail === 'string') ? r.data.detail : `HTTP ${r.status}`);
  } catch {
    setText(err, 'gateway unreachable');
  } finally {
    button.disabled = false;
  }
  err.hidden = false;
  $('login-password').select();
}

async function logout() {
  try { await postJson('/logout'); } catch { /* the page reloads either way */ }
  window.location.reload();
}

export function wireAuth() {
  $('login-form').addEventListener('submit', login);
  $('logout-button').addEventListener('click', logout);
}
