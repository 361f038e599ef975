// DOM helpers every page uses: an element builder (no innerHTML anywhere, so nothing the
// API returns is ever parsed as HTML), formatting, toasts and a throttle.

import { ApiError } from './api.js';

/** Builds an element: h('td', {class: 'num'}, 'text', child, ...). No innerHTML anywhere. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A status pill. */
export const badge = (s) => h('span', { class: 'badge s-' + String(s).toLowerCase() }, s);

/** "3 s ago", "in 2 min", "just now". */
export function ago(t) {
  if (!t) return '';
  const s = Math.round((Date.parse(t) - Date.now()) / 1000);
  const a = Math.abs(s);
  if (a < 3) return 'just now';
  const v = a < 60 ? a + ' s' : a < 3600 ? Math.round(a / 60) + ' min' : a < 86400 ? Math.round(a / 3600) + ' h' : Math.round(a / 86400) + ' d';
  return s < 0 ? v + ' ago' : 'in ' + v;
}

export const num = (n) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en'));

export function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return (n / 1024 ** i).toFixed(i ? 1 : 0) + ' ' + u[i];
}

/** A transient message at the bottom right. */
export function toast(msg, bad) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = 'toast' + (bad ? ' bad' : '');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.add('hidden'), 4000);
}

/** Runs an action, reporting failure as a toast. Returns the result or undefined. */
export async function attempt(fn, ok) {
  try {
    const r = await fn();
    if (ok) toast(typeof ok === 'function' ? ok(r) : ok);
    return r;
  } catch (e) {
    toast(e instanceof ApiError ? `${e.message} (${e.code})` : String(e.message || e), true);
    return undefined;
  }
}

/** Renders an error (e.g. a disabled module) in place of a section. */
export function failure(e) {
  const msg = e instanceof ApiError ? `${e.message} (${e.code})` : String(e.message || e);
  return h('div', { class: 'empty error' }, msg);
}

/** A "live" indicator whose dot turns green while the stream is connected. */
export function liveDot() {
  const el = h('span', { class: 'live', 'data-live': '' }, 'live');
  el.set = (on) => { el.classList.toggle('on', on); el.dataset.live = on ? 'on' : ''; };
  return el;
}

/**
 * Calls the async `fn` at most once per `ms`, never two at a time, and once more after
 * the last call (so a burst of events ends with a fresh view).
 */
export function throttle(fn, ms) {
  let busy = false;
  let again = false;
  const run = async () => {
    busy = true;
    try { await fn(); } catch { /* loaders report their own errors */ }
    setTimeout(() => { busy = false; if (again) { again = false; run(); } }, ms);
  };
  return () => { if (busy) again = true; else run(); };
}

/**
 * Orders the answers of a loader that may be called again before its last call answered:
 * `const current = turn();` before the request, `if (!current()) return;` after it — an
 * older answer never overwrites a newer one.
 */
export function turns() {
  let n = 0;
  return () => { const mine = ++n; return () => mine === n; };
}

/** A progress bar at `percent` (0–100); `set(p)` moves it. */
export function progressBar(percent) {
  const fill = h('span');
  const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, fill);
  bar.set = (p) => { const v = Math.max(0, Math.min(100, Number(p) || 0)); fill.style.width = v + '%'; bar.setAttribute('aria-valuenow', v.toFixed(0)); };
  bar.set(percent);
  return bar;
}

/** A timestamp as local time with how long ago it was: "02/12/2026, 07:50:43 (3 s ago)". */
export const when = (t) => (t ? `${new Date(t).toLocaleString()} (${ago(t)})` : '');
