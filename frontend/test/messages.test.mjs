// Texts for close codes, ended sessions and API errors (src/messages.js), in English:
// without Django's catalog, gettext() returns the msgid.
import test from 'node:test';
import assert from 'node:assert/strict';

import { CLOSE_CODES } from '../src/protocol.js';
import { closePolicy } from '../src/flow.js';
import { apiErrorMessage, closedNotice, endMessage, reasonText } from '../src/messages.js';

const here = { href: 'https://lab.example.edu/labs/3/', pathname: '/labs/3/', search: '' };

test('every close code has its own sentence', () => {
  const network = reasonText('network');
  const texts = new Set();
  for (const [name, code] of Object.entries(CLOSE_CODES)) {
    const text = reasonText(closePolicy(code).reason);
    assert.notEqual(text, network, name);
    texts.add(text);
  }
  assert.equal(texts.size, Object.keys(CLOSE_CODES).length);
});

test('4012: "open in another window" with a Take it back button that reconnects', () => {
  const policy = closePolicy(CLOSE_CODES.CONSOLE_TAKEN);
  assert.equal(policy.reconnect, false);
  const n = closedNotice(policy.reason, { location: here });
  assert.equal(n.text, 'This terminal is open in another window.');
  assert.equal(n.kind, 'warning');
  assert.deepEqual(n.action, { label: 'Take it back', run: 'reconnect' });
});

test('4001: a Log in link back to this page, no button', () => {
  const policy = closePolicy(CLOSE_CODES.UNAUTHENTICATED);
  assert.equal(policy.reconnect, false);
  const n = closedNotice(policy.reason, { loginUrl: '/accounts/login/', location: here });
  assert.equal(n.text, 'Your login has expired. Please log in again.');
  assert.deepEqual(n.action, { link: true, label: 'Log in', href: '/accounts/login/?next=%2Flabs%2F3%2F' });
});

test('4010: why the session ended when the page knows it, else that it ended', () => {
  const policy = closePolicy(CLOSE_CODES.SANDBOX_ENDED);
  assert.equal(policy.reconnect, false);
  assert.deepEqual(closedNotice(policy.reason, { location: here }), {
    text: 'The lab session has ended.',
    kind: 'info',
    action: null,
  });
  const why = endMessage({ state: 'stopped', end_reason_label: 'the sandbox stopped by itself' });
  assert.equal(closedNotice(policy.reason, { endText: why, location: here }).text, why);
});

test('endMessage: failure_message, end_reason_label, expiry', () => {
  assert.equal(endMessage({ state: 'failed', failure_message: 'Out of disk.' }), 'Out of disk.');
  assert.equal(endMessage({ state: 'failed' }), 'The lab could not be started.');
  assert.equal(
    endMessage({ state: 'stopped', end_reason_label: 'idle too long' }),
    'This lab session has ended: idle too long. You can start the lab again.',
  );
  assert.match(endMessage({ state: 'expired' }), /^Time is up/);
  assert.equal(endMessage({ state: 'stopped' }), 'This lab session has ended. You can start the lab again.');
});

test('apiErrorMessage shows the server\'s message for any JSON error', () => {
  const check = (code, message) => ({ error: { code, message } });
  assert.equal(apiErrorMessage(429, check('check_busy', 'A check is running.')), 'A check is running.');
  assert.equal(apiErrorMessage(429, check('check_rate', 'Wait a minute.')), 'Wait a minute.');
  assert.equal(apiErrorMessage(409, check('sandbox_ended', 'The sandbox ended.')), 'The sandbox ended.');
  assert.equal(apiErrorMessage(409, check('check_failed', 'The check failed.')), 'The check failed.');
  assert.equal(apiErrorMessage(503, check('engine_unavailable', 'Servers down.')), 'Servers down.');
  assert.equal(apiErrorMessage(401, { detail: 'Unauthorized' }), 'Unauthorized');
  assert.equal(apiErrorMessage(400, { error: 'bad thing' }), 'bad thing');
  assert.equal(apiErrorMessage(502, null), 'The server returned an error (HTTP 502).');
  assert.equal(apiErrorMessage(500, { error: { code: 'x', message: '  ' } }), 'The server returned an error (HTTP 500).');
});
