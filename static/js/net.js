// The one network helper of the front end: the CSRF token, and JSON over fetch with the server's
// own error messages. Every module that talks to the server imports from here.

export class RequestError extends Error {
  constructor(message, status, data = null) {
    super(message);
    this.status = status;
    this.data = data; // the server's JSON answer, when it gave one
  }
}

// Messages shown to the user, translated by the server into <template id="strings"> (chat page).
function message(key, fallback) {
  const holder = document.getElementById('strings');
  return (holder && holder.dataset[key]) || fallback;
}

// The CSRF token: a form's own hidden field when given one, else the page's <meta name="csrf-token">.
export function csrfToken(form = null) {
  const field = form && form.querySelector('input[name="csrfmiddlewaretoken"]');
  if (field) return field.value;
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') || '' : '';
}

// GET (no body) or POST (a JSON body, or `form`: FormData sent as multipart); resolves to the
// parsed JSON, rejects with a RequestError carrying the server's own explanation when it gives one.
export async function requestJSON(url, { method = 'GET', body = undefined, form = undefined, signal = undefined } = {}) {
  const headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  let payload;
  if (method !== 'GET') {
    headers['X-CSRFToken'] = csrfToken();
    if (form) {
      payload = form; // the browser sets the multipart Content-Type with its boundary
    } else {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body || {});
    }
  }
  let response;
  try {
    response = await fetch(url, { method, credentials: 'same-origin', headers, body: payload, signal });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new RequestError(message('network', 'Could not reach the server. Check your connection and try again.'), 0);
  }
  let data = null;
  if ((response.headers.get('Content-Type') || '').includes('json')) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok || data === null) {
    const said = data && ((typeof data.error === 'string' && data.error) || (typeof data.detail === 'string' && data.detail));
    const explanation = said
      || (response.status === 401 || response.status === 403 || response.redirected
        ? message('session', 'Your session has expired. Reload the page and sign in again.')
        : message('server', 'Something went wrong. Please try again.'));
    throw new RequestError(explanation, response.status, data);
  }
  return data;
}

export function postJSON(url, body = {}) {
  return requestJSON(url, { method: 'POST', body });
}

export function postForm(url, form) {
  return requestJSON(url, { method: 'POST', form });
}

// The strings the server translated, from a <template id=...> holding data-* attributes.
export function strings(id, defaults) {
  const out = { ...defaults };
  const holder = document.getElementById(id);
  if (!holder) return out;
  for (const key of Object.keys(defaults)) {
    if (holder.dataset[key]) out[key] = holder.dataset[key];
  }
  return out;
}
