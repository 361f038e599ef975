// The dashboard's only way to talk to hearth: the public REST API with the key from
// sessionStorage in an Authorization header, and WebSockets opened with single-use stream
// tickets (POST /api/auth/stream-ticket), so the key never appears in a URL.

const KEY = 'hearth.apiKey';

export const session = {
  key: sessionStorage.getItem(KEY) || '',
  scope: '',
  set(key) { this.key = key; if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY); },
  get readOnly() { return this.scope === 'read_only'; },
};

/** An API error with the server's code and message. */
export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function headers(extra) {
  const h = Object.assign({}, extra);
  if (session.key) h.Authorization = 'Bearer ' + session.key;
  return h;
}

/** Calls the API; JSON in and out. Throws ApiError on a non-2xx answer. */
export async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const e = data && data.error ? data.error : { code: 'http_' + r.status, message: text || r.statusText };
    throw new ApiError(r.status, e.code, e.message);
  }
  return { data, headers: r.headers, status: r.status };
}

export const get = async (path) => (await api('GET', path)).data;
export const post = async (path, body) => (await api('POST', path, body)).data;
export const del = async (path) => (await api('DELETE', path)).data;

/** A raw GET (for cache values and downloads): the Response, after checking the status. */
export async function raw(path) {
  const r = await fetch(path, { headers: headers() });
  if (!r.ok) {
    let e = { code: 'http_' + r.status, message: r.statusText };
    try { e = (await r.json()).error || e; } catch { /* not JSON */ }
    throw new ApiError(r.status, e.code, e.message);
  }
  return r;
}

/** Trades the key for a stream ticket; also tells the key's scope. */
export async function ticket() {
  return (await api('POST', '/api/auth/stream-ticket')).data;
}

/**
 * A WebSocket on `path` that reconnects (with a fresh ticket) until closed. `onEvent(event,
 * data)` gets every frame; `onOpen(send)` runs after each (re)connect, e.g. to subscribe
 * or to re-read what may have changed before the stream was connected; `onState(connected)`
 * drives a "live" indicator.
 */
export function live(path, params, { onEvent, onOpen, onState }) {
  let ws = null;
  let closed = false;
  let delay = 500;
  const send = (obj) => { if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj)); };
  async function open() {
    if (closed) return;
    let t;
    try { t = await ticket(); } catch { return retry(); }
    const q = new URLSearchParams(params || {});
    q.set('ticket', t.ticket);
    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path + '?' + q);
    ws.onopen = () => { delay = 500; onState && onState(true); onOpen && onOpen(send); };
    ws.onmessage = (e) => { try { const m = JSON.parse(e.data); onEvent(m.event, m.data); } catch { /* ignore bad frames */ } };
    ws.onclose = () => { onState && onState(false); retry(); };
  }
  function retry() {
    if (closed) return;
    setTimeout(open, delay);
    delay = Math.min(delay * 2, 10000);
  }
  open();
  return { send, close() { closed = true; if (ws) ws.close(); } };
}
