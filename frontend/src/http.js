// The page's one way to call the site's JSON endpoints: same-origin, with the login cookie
// and Django's CSRF token on writes. A failed request throws HttpError with the server's
// words (see apiErrorMessage), its status, its error code, its JSON body and the wait it
// asked for (Retry-After).

import { readCookie, retryAfterMs } from './flow.js';
import { gettext } from './i18n.js';
import { apiErrorMessage } from './messages.js';

export class HttpError extends Error {
  constructor(message, { status = 0, data = null, retryAfter = 0 } = {}) {
    super(message);
    this.status = status;
    this.data = data || {};
    this.code = errorCode(this.data);
    this.retryAfter = retryAfter; // milliseconds the server asked to wait
  }
}

/** The machine-readable code of an error body: ours ({code}) or the API's ({error: {code}}). */
export function errorCode(data) {
  if (!data) return '';
  if (typeof data.code === 'string' && data.code) return data.code;
  const e = data.error;
  return (e && typeof e === 'object' && e.code) || '';
}

export function csrfToken() {
  const fromCookie = readCookie(document.cookie, 'csrftoken');
  if (fromCookie) return fromCookie;
  const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
  return input ? input.value : '';
}

/**
 * fetch + JSON. `body` is sent as JSON on everything but GET; `networkMessage` replaces the
 * default words shown when the server cannot be reached at all.
 */
export async function request(method, url, body = null, networkMessage = '') {
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
    throw new HttpError(
      networkMessage || gettext('Could not reach the server. Check your connection and try again.'),
    );
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    throw new HttpError(apiErrorMessage(res.status, data), {
      status: res.status,
      data,
      retryAfter: retryAfterMs(res.headers.get('Retry-After'), Date.now()),
    });
  }
  return data;
}
