// request() (src/http.js), the one JSON wrapper of the lab page and the editor: what a
// failure carries to the page (the server's words, code, body, Retry-After) and what goes out.
import test from 'node:test';
import assert from 'node:assert/strict';

const sent = [];
let reply = null;
globalThis.window = {};
globalThis.document = { cookie: 'csrftoken=tok%3D1', querySelector: () => null };
globalThis.fetch = async (url, init) => {
  sent.push({ url, ...init });
  if (reply === 'offline') throw new TypeError('Failed to fetch');
  const { status, body, headers = {} } = reply;
  return {
    ok: status < 400,
    status,
    headers: { get: (k) => headers[k] ?? null },
    json: async () => (body === undefined ? Promise.reject(new SyntaxError('x')) : body),
  };
};

const { request, HttpError } = await import('../src/http.js');

test('a write sends JSON and the CSRF token; a GET sends neither', async () => {
  reply = { status: 200, body: { ok: 1 } };
  assert.deepEqual(await request('POST', '/api/x/', { a: 1 }), { ok: 1 });
  const post = sent.at(-1);
  assert.equal(post.headers['X-CSRFToken'], 'tok=1');
  assert.equal(post.body, '{"a":1}');
  assert.equal(post.credentials, 'same-origin');
  await request('GET', '/api/x/');
  assert.equal(sent.at(-1).body, undefined);
  assert.equal(sent.at(-1).headers['X-CSRFToken'], undefined);
});

test("an API error carries the server's message, code, body and Retry-After", async () => {
  reply = {
    status: 429,
    body: { error: { code: 'rate_limited', message: 'Wait a moment.' } },
    headers: { 'Retry-After': '3' },
  };
  const err = await request('POST', '/api/x/check/').catch((e) => e);
  assert.ok(err instanceof HttpError);
  assert.equal(err.message, 'Wait a moment.');
  assert.equal(err.status, 429);
  assert.equal(err.code, 'rate_limited');
  assert.equal(err.retryAfter, 3000);
});

test("the editor's error bodies ({error, code, disk_digest}) keep their fields", async () => {
  reply = { status: 409, body: { error: 'Changed on disk.', code: 'conflict', disk_digest: 'abc' } };
  const err = await request('POST', '/save/', {}).catch((e) => e);
  assert.equal(err.message, 'Changed on disk.');
  assert.equal(err.code, 'conflict');
  assert.equal(err.data.disk_digest, 'abc');
});

test('a body that is not JSON still gives a readable error', async () => {
  reply = { status: 502, body: undefined };
  const err = await request('GET', '/api/x/').catch((e) => e);
  assert.match(err.message, /502/);
  assert.equal(err.code, '');
});

test('an unreachable server gives the words of the caller, or the default', async () => {
  reply = 'offline';
  assert.equal((await request('GET', '/x/', null, 'Offline!').catch((e) => e)).message, 'Offline!');
  assert.match((await request('GET', '/x/').catch((e) => e)).message, /Could not reach the server/);
  assert.equal((await request('GET', '/x/').catch((e) => e)).status, 0);
});
