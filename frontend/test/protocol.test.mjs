// The protocol's constants have one source, apps/terminals/protocol.py: src/protocol-constants.js
// must be exactly what it prints, and docs/terminal-protocol.md must say the same.
// tests/unit/test_protocol.py checks the same file from the Python side.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as P from '../src/protocol.js';
import { closePolicy } from '../src/flow.js';

const docPath = fileURLToPath(new URL('../../docs/terminal-protocol.md', import.meta.url));
const haveDoc = existsSync(docPath);
const doc = haveDoc ? readFileSync(docPath, 'utf8') : '';
const pyPath = fileURLToPath(new URL('../../apps/terminals/protocol.py', import.meta.url));
const havePy = existsSync(pyPath);
const generatedPath = fileURLToPath(new URL('../src/protocol-constants.js', import.meta.url));

test('src/protocol-constants.js is what apps/terminals/protocol.py prints', { skip: !havePy && 'apps/ not present' }, () => {
  const expected = execFileSync(process.env.PYTHON || 'python3', [pyPath], { encoding: 'utf8' });
  const actual = readFileSync(generatedPath, 'utf8');
  assert.equal(actual, expected, 'stale: run `npm run build` (or `node build.mjs --constants`)');
});

test('every close code of the server has a name in CloseCode and its own closePolicy entry', () => {
  const codes = Object.entries(P.CLOSE_CODES);
  assert.ok(codes.length >= 8);
  assert.equal(P.CLOSE_CODES.CONSOLE_TAKEN, 4012);
  for (const [name, code] of codes) {
    assert.equal(P.CloseCode[name], code, name);
    assert.notEqual(closePolicy(code).reason, 'network', `${name} falls through to the default`);
  }
  assert.equal(new Set(codes.map(([, c]) => c)).size, codes.length, 'codes are distinct');
});

/** The close-code table: code -> {name, reconnects ("yes"/"no"), text}. */
function docCloseCodes() {
  const rows = {};
  for (const [, code, name, reconnects, text] of doc.matchAll(
    /^\|\s*(\d{4})\s*\|\s*`(\w+)`\s*\|\s*(yes|no)\s*\|\s*(.*?)\s*\|\s*$/gm,
  )) {
    rows[code] = { name, reconnects, text };
  }
  return rows;
}

test('the doc\'s close-code table lists every code, and what the browser does', { skip: !haveDoc && 'docs/ not present' }, () => {
  const rows = docCloseCodes();
  assert.deepEqual(
    Object.entries(rows).map(([code, r]) => [r.name, Number(code)]).sort(),
    Object.entries(P.CLOSE_CODES).sort(),
    'the table has exactly the codes of protocol.py',
  );
  for (const [code, row] of Object.entries(rows)) {
    const policy = closePolicy(Number(code));
    assert.equal(row.reconnects, policy.reconnect ? 'yes' : 'no', `${row.name}: "reconnects" column`);
  }
  assert.match(rows[P.CloseCode.CONSOLE_TAKEN].text, /Take it back/);
});

test('size constants match the doc', { skip: !haveDoc && 'docs/ not present' }, () => {
  for (const name of ['HIGH_WATERMARK', 'LOW_WATERMARK', 'ACK_EVERY', 'MAX_INPUT_FRAME']) {
    const m = doc.match(new RegExp('`' + name + '`\\s*\\((\\d+)\\s*KiB\\)'));
    assert.ok(m, `${name} is documented with a size`);
    assert.equal(P[name], Number(m[1]) * 1024, name);
  }
  assert.ok(P.LOW_WATERMARK < P.HIGH_WATERMARK);
  assert.ok(P.ACK_EVERY < P.LOW_WATERMARK);
});

test('rate rules match the doc (acks exempt)', { skip: !haveDoc && 'docs/ not present' }, () => {
  for (const name of ['INPUT_RATE_BURST', 'INPUT_RATE_PER_SECOND', 'ACKS_COUNT_AGAINST_RATE']) {
    const m = doc.match(new RegExp('`' + name + '`\\s*\\((\\w+)\\)'));
    assert.ok(m, `${name} is documented with its value`);
    assert.equal(String(P[name]), m[1], name);
  }
  assert.equal(P.ACKS_COUNT_AGAINST_RATE, false);
});

test('resize bounds match the doc', { skip: !haveDoc && 'docs/ not present' }, () => {
  const m = doc.match(/(\d+) ≤ cols ≤ (\d+), (\d+) ≤ rows ≤ (\d+)/);
  assert.ok(m);
  assert.deepEqual(m.slice(1).map(Number), [P.MIN_COLS, P.MAX_COLS, P.MIN_ROWS, P.MAX_ROWS]);
});

test('backoff matches the doc (0.5 s doubling to 10 s)', () => {
  assert.equal(P.RECONNECT_BASE_MS, 500);
  assert.equal(P.RECONNECT_MAX_MS, 10_000);
  if (haveDoc) assert.match(doc, /0\.5 s doubling to 10 s/);
});

test('message types come from the server', () => {
  assert.deepEqual(
    { ...P.MessageType },
    {
      RESIZE: P.RESIZE,
      ACK: P.ACK,
      STATUS: P.STATUS,
      SESSION: P.SESSION,
      PROGRESS: P.PROGRESS,
      WATCHERS: P.WATCHERS,
      WATCH_ALLOW: P.WATCH_ALLOW,
      WATCH_REFUSE: P.WATCH_REFUSE,
      WATCH_TAKE_BACK: P.WATCH_TAKE_BACK,
      ASK_TO_TYPE: P.ASK_TO_TYPE,
      WATCH_STATE: P.WATCH_STATE,
      WATCH_SCREEN: P.WATCH_SCREEN,
      WATCH_AWAY: P.WATCH_AWAY,
    },
  );
  assert.equal(P.STATUS_ATTACHED, 'attached');
});
