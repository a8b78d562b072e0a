// The live class page's pure helpers: the countdown, "last active", merging pushed rows.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ago, clock, mergeRows, secondsUntil } from '../src/classlive.js';

test('time left reads m:ss, or h:mm:ss past an hour, never negative', () => {
  assert.equal(clock(0), '0:00');
  assert.equal(clock(59.9), '0:59');
  assert.equal(clock(61), '1:01');
  assert.equal(clock(3600 + 5 * 60 + 7), '1:05:07');
  assert.equal(clock(-3), '0:00');
  assert.equal(clock(null), '');
});

test('time left follows the server clock, not a laptop that is off by minutes', () => {
  const expires = '2026-03-02T10:20:00Z';
  const serverNow = Date.parse('2026-03-02T10:10:00Z');
  const laptopNow = serverNow - 5 * 60 * 1000; // five minutes slow
  assert.equal(secondsUntil(expires, laptopNow, serverNow - laptopNow), 600);
  assert.equal(secondsUntil(expires, serverNow + 3600e3, 0), 0);
  assert.equal(secondsUntil(null, serverNow), null);
});

test('last active rounds down to minutes, hours, days', () => {
  const now = Date.parse('2026-03-02T10:00:00Z');
  assert.deepEqual(ago('2026-03-02T09:59:30Z', now), [0, 'minute']);
  assert.deepEqual(ago('2026-03-02T09:47:00Z', now), [-13, 'minute']);
  assert.deepEqual(ago('2026-03-02T07:00:00Z', now), [-3, 'hour']);
  assert.deepEqual(ago('2026-02-27T10:00:00Z', now), [-3, 'day']);
});

test('pushed rows replace their students and keep the order; a new student asks for the grid', () => {
  const grid = { labs: [], students: [{ id: 1, v: 'a' }, { id: 2, v: 'b' }, { id: 3, v: 'c' }] };
  const merged = mergeRows(grid, [{ id: 2, v: 'B' }]);
  assert.deepEqual(merged.students.map((s) => s.v), ['a', 'B', 'c']);
  assert.equal(grid.students[1].v, 'b'); // the old grid is left as it was
  assert.equal(mergeRows(grid, [{ id: 9, v: 'new' }]), null);
});
