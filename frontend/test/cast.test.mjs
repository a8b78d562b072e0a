import test from 'node:test';
import assert from 'node:assert/strict';

import { formatTime, readCast } from '../src/cast.js';

const header = JSON.stringify({ version: 2, width: 100, height: 30, timestamp: 1, title: 't' });

test('markers are listed in order with their times and labels', () => {
  const text = [
    header,
    JSON.stringify([0.5, 'o', '# ']),
    JSON.stringify([2.25, 'm', 'step 1 failed: 写一个文件']),
    JSON.stringify([3, 'r', '120x40']),
    JSON.stringify([9.75, 'm', 'step 1 passed: 写一个文件']),
    '',
  ].join('\n');
  const cast = readCast(text);
  assert.equal(cast.cols, 100);
  assert.equal(cast.rows, 30);
  assert.equal(cast.duration, 9.75);
  assert.deepEqual(cast.markers, [
    { index: 0, time: 2.25, label: 'step 1 failed: 写一个文件' },
    { index: 1, time: 9.75, label: 'step 1 passed: 写一个文件' },
  ]);
});

test('a half-written last line is dropped so the player can parse the rest', () => {
  const text = `${header}\n[0.1,"o","ok"]\n[0.2,"o","cut of`;
  const cast = readCast(text);
  assert.equal(cast.data, `${header}\n[0.1,"o","ok"]\n`);
});

test('a file that is not asciicast v2 is refused', () => {
  assert.throws(() => readCast('{"version": 1}\n'));
  assert.throws(() => readCast('garbage'));
});

test('times read as m:ss, or h:mm:ss past an hour', () => {
  assert.equal(formatTime(0), '0:00');
  assert.equal(formatTime(75.4), '1:15');
  assert.equal(formatTime(3725), '1:02:05');
});
