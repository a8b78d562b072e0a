// What the terminal and the lab page say: texts for close codes, ended sessions and API
// errors, as pure functions of what the server sent (no DOM; tested in
// test/messages.test.mjs). Every string goes through gettext() (src/i18n-strings.md);
// texts the server sends (failure_message, end_reason_label, error messages) are shown as
// they come, already translated.

import { SessionState } from './protocol.js';
import { loginHref } from './flow.js';
import { gettext, interpolate } from './i18n.js';

/** One sentence for a `reason` of closePolicy(). */
export function reasonText(reason) {
  switch (reason) {
    case 'unauthenticated':
      return gettext('Your login has expired. Please log in again.');
    case 'forbidden':
      return gettext('This terminal is not yours.');
    case 'not_found':
      return gettext('No such session.');
    case 'policy':
      return gettext('Too much input at once.');
    case 'not_running':
      return gettext('The lab is not running yet.');
    case 'ended':
      return gettext('The lab session has ended.');
    case 'engine':
      return gettext('The sandbox could not be reached.');
    case 'taken':
      return gettext('This terminal is open in another window.');
    default:
      return gettext('Connection lost.');
  }
}

/**
 * The notice of a terminal whose socket closed for good with `reason` (a closePolicy()
 * with reconnect false): {text, kind, action}. `action` is null, a link
 * {link: true, label, href} (log in, then come back), or a button {label, run} where
 * `run` names what the button does: "reconnect" (once; the server takes the console back
 * from the other window, which then shows this notice in turn).
 * `endText` is why the session ended, when the page already knows (see endMessage).
 */
export function closedNotice(reason, { endText = '', loginUrl = '', location } = {}) {
  switch (reason) {
    case 'ended':
      return { text: endText || reasonText(reason), kind: 'info', action: null };
    case 'taken':
      return {
        text: reasonText(reason),
        kind: 'warning',
        action: { label: gettext('Take it back'), run: 'reconnect' },
      };
    case 'unauthenticated':
      return {
        text: reasonText(reason),
        kind: 'error',
        action: { link: true, label: gettext('Log in'), href: loginHref(loginUrl, location) },
      };
    default:
      return { text: reasonText(reason), kind: 'error', action: null };
  }
}

/** Why a session in a final state ended, for the page and its terminals. */
export function endMessage(session) {
  if (session.state === SessionState.FAILED) {
    return session.failure_message || gettext('The lab could not be started.');
  }
  if (session.end_reason_label) {
    return interpolate(gettext('This lab session has ended: %(reason)s. You can start the lab again.'), {
      reason: session.end_reason_label,
    });
  }
  if (session.state === SessionState.EXPIRED) {
    return gettext('Time is up: this lab session has expired. You can start the lab again.');
  }
  return gettext('This lab session has ended. You can start the lab again.');
}

/**
 * The text of a failed API call: the server's own message when it sent one as JSON
 * ({"error": {"code", "message"}}, docs/api.md; also a bare {"detail"} or {"message"}),
 * else a sentence with the HTTP status.
 */
export function apiErrorMessage(status, data) {
  const e = data && data.error;
  for (const text of [e && e.message, e, data && data.detail, data && data.message]) {
    if (typeof text === 'string' && text.trim()) return text;
  }
  return interpolate(gettext('The server returned an error (HTTP %(status)s).'), { status });
}
