// The constants in src/protocol.js must match docs/terminal-protocol.md.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as P from '../src/protocol.js';

const docPath = fileURLToPath(new URL('../../docs/terminal-protocol.md', import.meta.url));
const haveDoc = existsSync(docPath);
const doc = haveDoc ? readFileSync(docPath, 'utf8') : '';

test('size constants match the doc', { skip: !haveDoc && 'docs/ not present' }, () => {
  for (const name of ['HIGH_WATERMARK', 'LOW_WATERMARK', 'ACK_EVERY', 'MAX_INPUT_FRAME']) {
    const m = doc.match(new RegExp('`' + name + '`\\s*\\((\\d+)\\s*KiB\\)'));
    assert.ok(m, `${name} is documented with a size`);
    assert.equal(P[name], Number(m[1]) * 1024, name);
  }
  assert.ok(P.LOW_WATERMARK < P.HIGH_WATERMARK);
  assert.ok(P.ACK_EVERY < P.LOW_WATERMARK);
});

test('close codes match the doc table', { skip: !haveDoc && 'docs/ not present' }, () => {
  const rows = [...doc.matchAll(/^\|\s*(\d{4})\s*\|\s*`(\w+)`\s*\|/gm)];
  assert.ok(rows.length >= 7);
  for (const [, code, name] of rows) assert.equal(P.CloseCode[name], Number(code), name);
});

test('resize bounds match the doc', { skip: !haveDoc && 'docs/ not present' }, () => {
  const m = doc.match(/1 ≤ cols ≤ (\d+), 1 ≤ rows ≤ (\d+)/);
  assert.ok(m);
  assert.equal(P.MAX_COLS, Number(m[1]));
  assert.equal(P.MAX_ROWS, Number(m[2]));
});

test('backoff matches the doc (0.5 s doubling to 10 s)', () => {
  assert.equal(P.RECONNECT_BASE_MS, 500);
  assert.equal(P.RECONNECT_MAX_MS, 10_000);
});

const pyPath = fileURLToPath(new URL('../../apps/terminals/protocol.py', import.meta.url));
const havePy = existsSync(pyPath);

test('constants match apps/terminals/protocol.py', { skip: !havePy && 'apps/ not present' }, () => {
  const py = readFileSync(pyPath, 'utf8');
  const values = {};
  for (const [, name, expr] of py.matchAll(/^([A-Z_]+)\s*=\s*([0-9 *_]+)\s*$/gm)) {
    values[name] = expr.split('*').reduce((a, x) => a * Number(x.trim().replaceAll('_', '')), 1);
  }
  for (const name of ['HIGH_WATERMARK', 'LOW_WATERMARK', 'ACK_EVERY', 'MAX_INPUT_FRAME',
    'INPUT_RATE_BURST', 'INPUT_RATE_PER_SECOND', 'MAX_COLS', 'MAX_ROWS']) {
    assert.equal(P[name], values[name], name);
  }
  for (const name of ['UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'POLICY', 'NOT_RUNNING',
    'SANDBOX_ENDED', 'ENGINE_ERROR']) {
    assert.equal(P.CloseCode[name], values[name], name);
  }
});
