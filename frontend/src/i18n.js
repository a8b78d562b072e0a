// Translation helpers. Django's JavaScript catalog (JavaScriptCatalog view, domain
// "djangojs") defines window.gettext / window.interpolate; without it, English is shown.
// Call gettext() with a string literal so `makemessages -d djangojs` can find it, and
// list every msgid in src/i18n-strings.md (a test checks that the list is complete).

export function gettext(msgid) {
  const g = typeof window !== 'undefined' ? window.gettext : undefined;
  return typeof g === 'function' ? g(msgid) : msgid;
}

/** interpolate("%(n)s left", {n: 3}) with named placeholders, like Django's. */
export function interpolate(fmt, values) {
  const f = typeof window !== 'undefined' ? window.interpolate : undefined;
  if (typeof f === 'function') return f(fmt, values, true);
  return fmt.replace(/%\((\w+)\)s/g, (m, k) => (k in values ? String(values[k]) : m));
}
