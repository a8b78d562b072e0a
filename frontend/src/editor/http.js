// JSON requests of the editor pages: same-origin, with Django's CSRF token on writes.
// A failed request throws HttpError carrying the server's message (and its JSON body).

export class HttpError extends Error {
  constructor(message, status = 0, data = null) {
    super(message);
    this.status = status;
    this.data = data || {};
    this.code = errorCode(this.data);
  }
}

function errorCode(data) {
  if (data.code) return data.code;
  const e = data.error;
  return e && typeof e === 'object' ? e.code || '' : '';
}

/** The message in a JSON error body: ours ({error: "…"}) or the API's ({error: {message}}). */
export function errorMessage(data, fallback) {
  const e = data && data.error;
  if (typeof e === 'string' && e) return e;
  if (e && typeof e === 'object' && e.message) return e.message;
  return fallback;
}

export function csrfToken() {
  const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
  if (input && input.value) return input.value;
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

/** fetch + JSON. `networkMessage` is shown when the server cannot be reached. */
export async function request(method, url, body, networkMessage) {
  const headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  const init = { method, credentials: 'same-origin', headers };
  if (method !== 'GET') {
    headers['X-CSRFToken'] = csrfToken();
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body || {});
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw new HttpError(networkMessage);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    throw new HttpError(errorMessage(data, `${res.status} ${res.statusText}`), res.status, data);
  }
  return data;
}
