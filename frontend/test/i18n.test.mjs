// Every gettext('...') literal in src/ must be listed, translated, in src/i18n-strings.md.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src/', import.meta.url));
const catalog = readFileSync(src + 'i18n-strings.md', 'utf8');

function msgids() {
  const ids = new Set();
  for (const f of readdirSync(src).filter((n) => n.endsWith('.js') && n !== 'i18n.js')) {
    const text = readFileSync(src + f, 'utf8');
    for (const m of text.matchAll(/\bgettext\(\s*(['"`])((?:\\.|(?!\1).)*)\1\s*\)/g)) ids.add(m[2]);
    // gettext must only be called with a literal, or extraction cannot see the msgid
    for (const m of text.matchAll(/\bgettext\(\s*([^'"`\s)])/g)) {
      assert.fail(`${f}: gettext() called with a non-literal argument near "${m[0]}"`);
    }
  }
  return ids;
}

test('all msgids are in i18n-strings.md with a translation', () => {
  const ids = msgids();
  assert.ok(ids.size > 10);
  for (const id of ids) {
    const re = new RegExp(`^msgid "${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"\\nmsgstr "(.+)"$`, 'm');
    const m = catalog.match(re);
    assert.ok(m, `missing in i18n-strings.md: ${id}`);
    const placeholders = (s) => [...s.matchAll(/%\((\w+)\)s/g)].map((x) => x[1]).sort();
    assert.deepEqual(placeholders(m[1]), placeholders(id), `placeholders of: ${id}`);
  }
});

const poPath = fileURLToPath(new URL('../../locale/zh_Hans/LC_MESSAGES/djangojs.po', import.meta.url));

test('djangojs.po carries every msgid with the translation of i18n-strings.md', { skip: !existsSync(poPath) && 'locale/ not present' }, () => {
  const po = readFileSync(poPath, 'utf8');
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const id of msgids()) {
    const re = new RegExp(`^msgid "${escape(id)}"\\nmsgstr "(.+)"$`, 'm');
    const inPo = po.match(re);
    assert.ok(inPo, `missing in djangojs.po: ${id}`);
    assert.equal(inPo[1], catalog.match(re)[1], `translation of: ${id}`);
  }
});
