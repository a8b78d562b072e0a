// SessionSync (src/session.js): one way of following a session, the events socket; a poll
// of the session only while that socket is down. WebSocket, fetch and timers are fakes.
import test from 'node:test';
import assert from 'node:assert/strict';

class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    this.sent = [];
    FakeWebSocket.all.push(this);
  }
  open() {
    this.readyState = FakeWebSocket.OPEN;
    if (this.onopen) this.onopen();
  }
  message(data) {
    this.onmessage({ data: JSON.stringify(data) });
  }
  close(code = 1000) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    if (this.onclose) this.onclose({ code });
  }
  send(text) {
    this.sent.push(text);
  }
}

const gets = [];
let answer = null;
globalThis.WebSocket = FakeWebSocket;
globalThis.window = { location: new URL('http://lab.example/courses/x/') };
globalThis.document = { cookie: '', querySelector: () => null };
globalThis.fetch = async (url, init) => {
  gets.push([init.method, url]);
  return { ok: true, status: 200, headers: { get: () => null }, json: async () => answer };
};

const { SessionSync, POLL_MS } = await import('../src/session.js');

const session = (state, id = 's1') => ({
  id,
  state,
  url: `/api/sessions/${id}/`,
  events_url: `/ws/sessions/${id}/events/`,
});
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

function sync() {
  const seen = [];
  const s = new SessionSync({ onChange: (x, prev) => seen.push([x.id, x.state, prev]) });
  return { s, seen };
}

test('an open events socket is the only follower: no poll', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  FakeWebSocket.all = [];
  gets.length = 0;
  const { s, seen } = sync();
  s.follow(session('starting'));
  const ws = FakeWebSocket.all.at(-1);
  assert.equal(ws.url, 'ws://lab.example/ws/sessions/s1/events/');
  ws.open();
  t.mock.timers.tick(POLL_MS * 5);
  assert.deepEqual(gets, []);
  ws.message({ type: 'session', session: session('running') });
  assert.deepEqual(seen.at(-1), ['s1', 'running', 'starting']);
  s.stop();
});

test('while the socket is down the session is polled, and the poll stops when it is back', async (t) => {
  FakeWebSocket.all = [];
  gets.length = 0;
  answer = session('running');
  const { s } = sync();
  s.follow(session('running'));
  const first = FakeWebSocket.all.at(-1);
  first.open();
  first.close(1006);
  await tick(5); // the fallback's first GET, at once
  assert.deepEqual(gets, [['GET', '/api/sessions/s1/']]);
  assert.ok(s._pollTimer, 'polling again in POLL_MS');
  // The socket reconnects (backoff) and opens: the poll is cancelled.
  await tick(2_000);
  const second = FakeWebSocket.all.at(-1);
  assert.notEqual(second, first);
  second.open();
  assert.equal(s._pollTimer, 0);
  s.stop();
});

test('a final state stops following; a stale session (before a reset) is ignored', () => {
  FakeWebSocket.all = [];
  const { s, seen } = sync();
  s.follow(session('running', 'old'));
  const ws = FakeWebSocket.all.at(-1);
  ws.open();
  s.follow(session('requested', 'new')); // the reset's new session
  assert.equal(ws.readyState, 3, 'the old socket is closed');
  s.update(session('stopped', 'old'));
  assert.equal(s.session.id, 'new');
  const now = FakeWebSocket.all.at(-1);
  now.open();
  now.message({ type: 'session', session: session('stopped', 'new') });
  assert.equal(now.readyState, 3);
  assert.equal(s._following, null);
  assert.deepEqual(seen.at(-1), ['new', 'stopped', 'requested']);
});
