// The dashboard shell: sign-in, navigation between pages (hash routes), and the small DOM
// helpers every page uses. Pages live in pages.js and jobs.js; each is a function that
// fills a container and returns a cleanup that closes its live streams.

import { session, ticket, ApiError } from './api.js';
import { failure } from './dom.js';
import { pages } from './pages.js';
import { jobPages } from './jobs.js';

const routes = Object.assign({}, pages, jobPages);

let cleanup = null;

function parseHash() {
  const [path, query] = (location.hash.slice(1) || '/overview').split('?');
  const parts = path.split('/').filter(Boolean);
  return { page: parts[0] || 'overview', arg: parts.slice(1).map(decodeURIComponent).join('/'), params: new URLSearchParams(query || '') };
}

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* already closed */ } cleanup = null; }
  const { page, arg, params } = parseHash();
  const view = routes[page] || routes.overview;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === page || (page === 'job' && a.dataset.page === 'queues'));
  }
  const root = document.getElementById('page');
  root.replaceChildren();
  cleanup = (await view(root, arg, params)) || null;
  // Marks the page as drawn (tests wait for it).
  document.body.dataset.page = page;
  document.body.dataset.render = String(Number(document.body.dataset.render || 0) + 1);
}

function showLogin(message) {
  document.getElementById('login').classList.remove('hidden');
  document.getElementById('page').replaceChildren();
  document.getElementById('login-error').textContent = message || '';
  document.getElementById('login-key').focus();
}

/** Checks the key (or that none is needed) and learns its scope. */
async function signIn() {
  try {
    const t = await ticket();
    session.scope = t.scope;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      const had = !!session.key;
      session.set('');
      showLogin(had ? 'That key was not accepted.' : '');
      return false;
    }
    document.getElementById('page').replaceChildren(failure(e));
    return false;
  }
  document.getElementById('login').classList.add('hidden');
  document.body.classList.toggle('readonly', session.readOnly);
  const label = { open: 'no auth (loopback)', admin: 'admin key', read_only: 'read-only key', user: 'user token' }[session.scope] || session.scope;
  document.getElementById('scope').textContent = label;
  document.getElementById('logout').classList.toggle('hidden', !session.key);
  return true;
}

document.getElementById('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  session.set(document.getElementById('login-key').value.trim());
  document.getElementById('login-key').value = '';
  if (await signIn()) render();
});
document.getElementById('logout').addEventListener('click', () => {
  session.set('');
  if (cleanup) cleanup();
  cleanup = null;
  document.getElementById('scope').textContent = '';
  document.getElementById('logout').classList.add('hidden');
  showLogin('Signed out.');
});
window.addEventListener('hashchange', () => { if (session.scope) render(); });

if (await signIn()) render();
