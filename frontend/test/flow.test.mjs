import test from 'node:test';
import assert from 'node:assert/strict';

import {
  AckBatcher,
  Backoff,
  CONTROL_BUDGET,
  ControlQueue,
  InputThrottle,
  KEYS_BUDGET,
  TokenBucket,
  backoffDelay,
  binaryStringToBytes,
  buildWsUrl,
  clampSize,
  closePolicy,
  commandLines,
  countsAgainstRate,
  formatDuration,
  loginHref,
  parseSessionAttr,
  readCookie,
  retryAfterMs,
  timerLevel,
} from '../src/flow.js';
import {
  ACKS_COUNT_AGAINST_RATE,
  ACK_EVERY,
  CloseCode,
  HIGH_WATERMARK,
  INPUT_RATE_BURST,
  INPUT_RATE_PER_SECOND,
  LOW_WATERMARK,
  MAX_INPUT_FRAME,
} from '../src/protocol.js';

test('AckBatcher acks every ACK_EVERY bytes while output is pending', () => {
  const a = new AckBatcher();
  const chunk = 4096;
  const acks = [];
  for (let i = 0; i < 16; i++) a.received(chunk); // 64 KiB queued in xterm.js
  for (let i = 0; i < 16; i++) {
    const n = a.written(chunk);
    if (n) acks.push(n);
  }
  assert.deepEqual(acks, [ACK_EVERY, ACK_EVERY, ACK_EVERY, ACK_EVERY]);
  assert.equal(a.inFlight, 0);
  assert.equal(a.unacked, 0);
});

test('AckBatcher keeps a small remainder for the next batch', () => {
  const a = new AckBatcher();
  a.received(10);
  a.received(20);
  assert.equal(a.written(10), 0);
  assert.equal(a.written(20), 0); // 30 bytes: below a batch, and below the low watermark
  a.received(ACK_EVERY);
  assert.equal(a.written(ACK_EVERY), ACK_EVERY + 30); // acknowledged with the next batch
});

test('AckBatcher: every received byte is acknowledged exactly once', () => {
  const a = new AckBatcher();
  let total = 0;
  let acked = 0;
  const sizes = [];
  for (let i = 0; i < 500; i++) sizes.push(1 + ((i * 7919) % 9000));
  // write in bursts: receive several, then complete them
  let i = 0;
  while (i < sizes.length) {
    const burst = sizes.slice(i, i + 1 + (i % 5));
    for (const n of burst) {
      a.received(n);
      total += n;
    }
    for (const n of burst) acked += a.written(n);
    i += burst.length;
  }
  assert.equal(acked + a.unacked, total); // every byte acknowledged or held, never twice
  assert.ok(a.unacked < ACK_EVERY);
});

test('AckBatcher never lets the unacknowledged total reach the high watermark', () => {
  // The server keeps sending until HIGH_WATERMARK bytes are unacked; the browser must
  // keep acking while it writes, or the server would stop for good.
  const a = new AckBatcher();
  let serverUnacked = 0;
  const frame = 8192;
  let maxUnacked = 0;
  for (let i = 0; i < 1000; i++) {
    if (serverUnacked < HIGH_WATERMARK) {
      a.received(frame);
      serverUnacked += frame;
    }
    // xterm.js writes one frame per step
    if (a.inFlight > 0) serverUnacked -= a.written(frame);
    maxUnacked = Math.max(maxUnacked, serverUnacked);
  }
  assert.ok(maxUnacked <= HIGH_WATERMARK);
  assert.ok(serverUnacked < ACK_EVERY + frame);
});

test('AckBatcher.reset forgets a previous connection', () => {
  const a = new AckBatcher();
  a.received(100);
  a.written(50);
  a.reset();
  assert.equal(a.inFlight, 0);
  a.received(ACK_EVERY);
  assert.equal(a.written(ACK_EVERY), ACK_EVERY); // nothing of the old connection counted
});

test('backoffDelay: 0.5 s doubling to 10 s, jitter only shortens', () => {
  assert.equal(backoffDelay(0, 0), 500);
  assert.equal(backoffDelay(1, 0), 1000);
  assert.equal(backoffDelay(2, 0), 2000);
  assert.equal(backoffDelay(3, 0), 4000);
  assert.equal(backoffDelay(4, 0), 8000);
  assert.equal(backoffDelay(5, 0), 10000);
  assert.equal(backoffDelay(50, 0), 10000);
  assert.equal(backoffDelay(0, 0.999999), 375);
  for (let k = 0; k < 1000; k++) {
    const d = backoffDelay(k % 12, Math.random());
    assert.ok(d >= 375 && d <= 10000, `delay ${d}`);
  }
});

test('Backoff counts attempts, honours minDelay and resets', () => {
  const b = new Backoff();
  assert.equal(b.next(0), 500);
  assert.equal(b.next(0), 1000);
  assert.equal(b.next(0, 3000), 3000);
  assert.equal(b.next(0), 4000);
  b.reset();
  assert.equal(b.next(0), 500);
});

test('closePolicy follows the close-code table', () => {
  for (const code of [
    CloseCode.UNAUTHENTICATED,
    CloseCode.FORBIDDEN,
    CloseCode.NOT_FOUND,
    CloseCode.SANDBOX_ENDED,
    CloseCode.CONSOLE_TAKEN,
  ]) {
    assert.equal(closePolicy(code).reconnect, false, String(code));
  }
  for (const code of [CloseCode.POLICY, CloseCode.NOT_RUNNING, CloseCode.ENGINE_ERROR, 1000, 1001, 1006, 1011, 1015]) {
    assert.equal(closePolicy(code).reconnect, true, String(code));
  }
  assert.ok(closePolicy(CloseCode.POLICY).minDelay > 0, 'pause after too much input');
  assert.ok(closePolicy(CloseCode.NOT_RUNNING).minDelay > 0, 'wait for the session');
  assert.equal(closePolicy(1006).reason, 'network');
  assert.equal(closePolicy(4010).reason, 'ended');
  assert.equal(closePolicy(4012).reason, 'taken');
  assert.equal(closePolicy(4001).reason, 'unauthenticated');
});

test('loginHref comes back to this page', () => {
  const here = { href: 'https://lab.example.edu/labs/3/?x=1', pathname: '/labs/3/', search: '?x=1' };
  assert.equal(loginHref('/accounts/login/', here), '/accounts/login/?next=%2Flabs%2F3%2F%3Fx%3D1');
  assert.equal(loginHref('', here), '/accounts/login/?next=%2Flabs%2F3%2F%3Fx%3D1');
  assert.equal(
    loginHref('https://sso.example.edu/login', here),
    'https://sso.example.edu/login?next=%2Flabs%2F3%2F%3Fx%3D1',
  );
});

test('retryAfterMs reads seconds and HTTP dates', () => {
  assert.equal(retryAfterMs(null, 0), 0);
  assert.equal(retryAfterMs('', 0), 0);
  assert.equal(retryAfterMs('30', 0), 30_000);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:00:10 GMT', now), 10_000);
  assert.equal(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
  assert.equal(retryAfterMs('soon', now), 0);
});

test('countsAgainstRate: every frame but an ack takes a token', () => {
  assert.equal(ACKS_COUNT_AGAINST_RATE, false);
  assert.equal(countsAgainstRate(null), true); // binary: keystrokes
  assert.equal(countsAgainstRate({ type: 'resize', cols: 80, rows: 24 }), true);
  assert.equal(countsAgainstRate({ type: 'ping', note: 'ack' }), true);
  assert.equal(countsAgainstRate({ type: 'ack', bytes: 1 }), false);
  assert.equal(countsAgainstRate({ type: 'ack', bytes: 1 }, true), true);
});

test('InputThrottle passes typing straight through', () => {
  const t = new InputThrottle({ burst: 10, perSecond: 5, now: 0 });
  t.push(Uint8Array.of(97));
  assert.deepEqual(t.take(0), [Uint8Array.of(97)]);
  assert.equal(t.delay(0), null);
});

test('InputThrottle splits large pastes into MAX_INPUT_FRAME frames, in order', () => {
  const t = new InputThrottle({ now: 0 });
  const big = new Uint8Array(MAX_INPUT_FRAME * 2 + 123).map((_, i) => i & 0xff);
  t.push(big);
  const frames = t.take(0);
  assert.deepEqual(
    frames.map((f) => f.length),
    [MAX_INPUT_FRAME, MAX_INPUT_FRAME, 123],
  );
  const joined = new Uint8Array(big.length);
  let off = 0;
  for (const f of frames) {
    joined.set(f, off);
    off += f.length;
  }
  assert.deepEqual(joined, big);
});

test('InputThrottle keeps below the rate, coalescing queued input', () => {
  const t = new InputThrottle({ burst: 3, perSecond: 2, now: 0 });
  for (let i = 0; i < 10; i++) t.push(Uint8Array.of(48 + i));
  const first = t.take(0);
  assert.equal(first.length, 1); // queued input goes out as one frame
  assert.deepEqual([...first[0]], [48, 49, 50, 51, 52, 53, 54, 55, 56, 57]);
  assert.equal(t.pending, 0);
  t.push(Uint8Array.of(1));
  assert.equal(t.take(0).length, 1);
  t.push(Uint8Array.of(1));
  assert.equal(t.take(0).length, 1); // burst of 3 used up

  t.push(Uint8Array.of(1));
  t.push(Uint8Array.of(2));
  assert.deepEqual(t.take(0), []); // bucket empty
  assert.equal(t.delay(0), 500); // one token per 500 ms
  assert.deepEqual(t.take(499), []);
  const later = t.take(500);
  assert.equal(later.length, 1);
  assert.deepEqual([...later[0]], [1, 2]);
});

test('InputThrottle: frames per second stay within the server bucket', () => {
  const burst = 100;
  const perSecond = 50;
  const t = new InputThrottle({ burst, perSecond, now: 0 });
  const server = new TokenBucket(burst, perSecond, 0); // the server's bucket, same parameters
  for (let ms = 0; ms < 10_000; ms += 5) {
    t.push(Uint8Array.of(1, 2, 3)); // a mouse-drag storm: 200 events per second
    for (const _ of t.take(ms)) assert.ok(server.take(ms), `server would close at ${ms} ms`);
  }
});

test('InputThrottle refuses more than maxQueued bytes', () => {
  const t = new InputThrottle({ burst: 1, perSecond: 1, maxQueued: 10, now: 0 });
  assert.equal(t.push(new Uint8Array(8)), true);
  assert.equal(t.push(new Uint8Array(8)), false);
  assert.equal(t.pending, 8);
});

test('binaryStringToBytes keeps bytes', () => {
  assert.deepEqual([...binaryStringToBytes('\x1b[M\xff\x80')], [0x1b, 0x5b, 0x4d, 0xff, 0x80]);
});

test('clampSize', () => {
  assert.deepEqual(clampSize(80.7, 24.2), { cols: 80, rows: 24 });
  assert.deepEqual(clampSize(5000, 900), { cols: 1000, rows: 500 });
  assert.equal(clampSize(0, 24), null);
  assert.equal(clampSize(NaN, 24), null);
  assert.equal(clampSize(undefined, undefined), null);
});

test('buildWsUrl makes absolute ws/wss URLs with the query', () => {
  assert.equal(
    buildWsUrl('/ws/sessions/abc/terminals/1/', { href: 'https://lab.example.edu/labs/3/' }, { cols: 120, rows: 40 }),
    'wss://lab.example.edu/ws/sessions/abc/terminals/1/?cols=120&rows=40',
  );
  assert.equal(
    buildWsUrl('/ws/sessions/abc/events/', { href: 'http://localhost:8000/labs/3/' }),
    'ws://localhost:8000/ws/sessions/abc/events/',
  );
  assert.equal(
    buildWsUrl('wss://other.example/ws/x/', { href: 'https://lab.example.edu/' }),
    'wss://other.example/ws/x/',
  );
});

test('commandLines', () => {
  assert.deepEqual(commandLines('ls -l\n'), ['ls -l']);
  assert.deepEqual(commandLines('\nunshare -p -f \\\n  --mount-proc bash\n\n'), ['unshare -p -f \\', '  --mount-proc bash']);
  assert.deepEqual(commandLines('cat <<EOF\na\n\nb\nEOF\r\n'), ['cat <<EOF', 'a', '', 'b', 'EOF']);
  assert.deepEqual(commandLines('  \n'), []);
});

test('formatDuration and timerLevel', () => {
  assert.equal(formatDuration(2700), '45:00');
  assert.equal(formatDuration(59), '0:59');
  assert.equal(formatDuration(3725), '1:02:05');
  assert.equal(formatDuration(-3), '0:00');
  assert.equal(timerLevel(2700), '');
  assert.equal(timerLevel(299), 'warning');
  assert.equal(timerLevel(300), '');
  assert.equal(timerLevel(59), 'danger');
});

test('parseSessionAttr', () => {
  assert.equal(parseSessionAttr(''), null);
  assert.equal(parseSessionAttr('  '), null);
  assert.equal(parseSessionAttr('{bad'), null);
  assert.equal(parseSessionAttr('{}'), null);
  assert.deepEqual(parseSessionAttr('{"id":"u1","state":"running"}'), { id: 'u1', state: 'running' });
});

test('readCookie', () => {
  assert.equal(readCookie('a=1; csrftoken=abc%3D; b=2', 'csrftoken'), 'abc=');
  assert.equal(readCookie('xcsrftoken=1', 'csrftoken'), '');
  assert.equal(readCookie('', 'csrftoken'), '');
});

test('TokenBucket', () => {
  const b = new TokenBucket(2, 4, 0);
  assert.equal(b.take(0), true);
  assert.equal(b.take(0), true);
  assert.equal(b.take(0), false);
  assert.equal(b.delay(0), 250);
  assert.equal(b.take(249), false);
  assert.equal(b.take(250), true);
  assert.equal(b.take(10_000), true);
  assert.equal(b.take(10_000), true);
  assert.equal(b.take(10_000), false); // never more than the burst
});

test('ControlQueue sends acks at once (the server does not count them), resizes on tokens', () => {
  const q = new ControlQueue({ burst: 1, perSecond: 10, now: 0 });
  q.resize(80, 24);
  q.resize(100, 30);
  assert.deepEqual(q.take(0), [{ type: 'resize', cols: 100, rows: 30 }]); // the latest only
  q.resize(120, 40);
  q.ack(100);
  assert.equal(q.delay(0), 0);
  assert.deepEqual(q.take(0), [{ type: 'ack', bytes: 100 }]); // no token left: resize waits
  for (let i = 0; i < 1000; i++) q.ack(1);
  assert.deepEqual(q.take(1), [{ type: 'ack', bytes: 1000 }]); // coalesced, never held back
  assert.equal(q.delay(1), 99);
  assert.deepEqual(q.take(100), [{ type: 'resize', cols: 120, rows: 40 }]);
  assert.equal(q.delay(100), null);
});

test('ControlQueue coalesces acks and keeps only the latest size (if acks counted)', () => {
  const q = new ControlQueue({ burst: 2, perSecond: 10, now: 0, acksCount: true });
  q.ack(100);
  q.resize(80, 24);
  assert.deepEqual(q.take(0), [
    { type: 'resize', cols: 80, rows: 24 },
    { type: 'ack', bytes: 100 },
  ]);
  q.ack(5);
  q.ack(7);
  q.resize(100, 30);
  q.resize(120, 40);
  assert.deepEqual(q.take(0), []); // no token left
  assert.equal(q.delay(0), 100);
  assert.deepEqual(q.take(100), [{ type: 'resize', cols: 120, rows: 40 }]);
  assert.deepEqual(q.take(200), [{ type: 'ack', bytes: 12 }]);
  assert.equal(q.delay(200), null);
});

test('the browser budgets stay inside the server bucket together', () => {
  assert.ok(KEYS_BUDGET.burst + CONTROL_BUDGET.burst <= INPUT_RATE_BURST / 2);
  assert.ok(KEYS_BUDGET.perSecond + CONTROL_BUDGET.perSecond <= INPUT_RATE_PER_SECOND * 0.8);
});

test('a flood with typing: keystrokes, resizes and acks never trip the server, output flows', () => {
  // The server as apps/terminals/consumers.py is: its bucket (this TokenBucket with the
  // server's parameters) over the frames countsAgainstRate() names, and the watermarks.
  const bucket = new TokenBucket(INPUT_RATE_BURST, INPUT_RATE_PER_SECOND, 0);
  let counted = 0;
  const serverFrame = (ms, message = null) => {
    if (!countsAgainstRate(message)) return;
    counted += 1;
    assert.ok(bucket.take(ms), `server would close with 4008 at ${ms} ms`);
  };
  const keys = new InputThrottle({ now: 0 });
  const control = new ControlQueue({ now: 0 });
  const acks = new AckBatcher();
  let unacked = 0;
  let paused = false;
  let delivered = 0;
  const chunk = 32 * 1024; // READ_CHUNK
  for (let ms = 0; ms < 20_000; ms += 1) {
    // server sends while not paused (a fast sandbox: one chunk per ms)
    if (!paused) {
      unacked += chunk;
      acks.received(chunk);
      if (unacked > HIGH_WATERMARK) paused = true;
    }
    // xterm.js writes 8 MB/s: one chunk every 4 ms
    if (ms % 4 === 0 && acks.inFlight > 0) control.ack(acks.written(chunk));
    // the student types (and a mouse drag) every 10 ms, and drags the window edge
    if (ms % 10 === 0) keys.push(Uint8Array.of(1));
    if (ms % 7 === 0) control.resize(80 + (ms % 40), 24);
    for (const _ of keys.take(ms)) serverFrame(ms);
    for (const m of control.take(ms)) {
      serverFrame(ms, m);
      if (m.type === 'ack') {
        unacked -= m.bytes;
        delivered += m.bytes;
        if (unacked < LOW_WATERMARK) paused = false;
      }
    }
  }
  // 20 s at up to 8 MB/s: most of it must have got through despite the batching
  assert.ok(delivered > 100 * 1024 * 1024, `delivered ${delivered}`);
  assert.ok(counted > 20 * INPUT_RATE_PER_SECOND * 0.5, `only ${counted} frames counted`);
});
