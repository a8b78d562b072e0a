// The live class page: the grid of students × labs × steps, kept current by the server's
// pushes over /ws/classes/<pk>/live/ (apps/teaching/consumers.py): {"type":"grid"} redraws
// everything, {"type":"rows"} redraws the rows of the students it carries.
//
// DOM contract (templates/teaching/class_detail.html): #class-live[data-url] holding
// <script id=class-labels> (words translated by the server: this page needs no JS catalog),
// <script id=class-grid> (the first grid) and table[data-role=grid]; [data-role=live-status]
// anywhere. Stable attributes for tests and styles:
//   tr[data-student=<username>][data-student-id]
//   td.lab-cell[data-student][data-lab=<lab id>][data-state=<session state>|none]
//   .dot[data-student][data-lab][data-step=<number>][data-state=passed|todo][data-passed]
//   .live-session[data-lab][data-state][data-session], [data-action=watch|recordings|stop]

import { Backoff, buildWsUrl } from './flow.js';

const fill = (fmt, values) =>
  fmt.replace(/%\((\w+)\)s/g, (m, k) => (k in values ? String(values[k]) : m));

/** m:ss (or h:mm:ss) of a number of seconds; '' for none. */
export function clock(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '';
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * Seconds until `expiresIso` at the browser time `nowMs`, where `offsetMs` is the server's
 * clock minus the browser's (a student's laptop clock may be minutes off).
 */
export function secondsUntil(expiresIso, nowMs, offsetMs = 0) {
  if (!expiresIso) return null;
  return Math.max(0, (Date.parse(expiresIso) - (nowMs + offsetMs)) / 1000);
}

/** [value, unit] for Intl.RelativeTimeFormat: how long ago `iso` was at `nowMs`. */
export function ago(iso, nowMs, offsetMs = 0) {
  const seconds = Math.max(0, (nowMs + offsetMs - Date.parse(iso)) / 1000);
  if (seconds < 60) return [0, 'minute'];
  if (seconds < 3600) return [-Math.floor(seconds / 60), 'minute'];
  if (seconds < 86400) return [-Math.floor(seconds / 3600), 'hour'];
  return [-Math.floor(seconds / 86400), 'day'];
}

/** The grid with the students of `rows` replaced (matched by id); null if one is new. */
export function mergeRows(grid, rows) {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const known = new Set(grid.students.map((s) => s.id));
  if (rows.some((r) => !known.has(r.id))) return null;
  return { ...grid, students: grid.students.map((s) => byId.get(s.id) || s) };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export class ClassLive {
  constructor(root) {
    this.root = root;
    this.labels = JSON.parse(document.getElementById('class-labels').textContent);
    this.table = root.querySelector('[data-role=grid]');
    this.status = document.querySelector('[data-role=live-status]');
    this.csrf = (document.querySelector('input[name=csrfmiddlewaretoken]') || {}).value || '';
    const lang = document.documentElement.lang || undefined;
    this.relative = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
    this.absolute = new Intl.DateTimeFormat(lang, { dateStyle: 'short', timeStyle: 'short' });
    this.offset = 0;
    this.backoff = new Backoff();
    const first = JSON.parse(document.getElementById('class-grid').textContent);
    this.heard(first.generated_at);
    this.render(first);
    this.connect();
    setInterval(() => this.tick(), 1000);
  }

  connect() {
    const ws = new WebSocket(buildWsUrl(this.root.dataset.url, window.location));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      this.backoff.reset();
      this.setStatus(this.labels.live, false);
      if (msg.type === 'grid') {
        this.heard(msg.grid.generated_at);
        this.render(msg.grid);
      } else if (msg.type === 'rows') {
        this.heard(msg.generated_at);
        this.update(msg.rows);
      }
    };
    ws.onclose = (ev) => {
      this.setStatus(this.labels.offline, true);
      if (ev.code === 4001 || ev.code === 4003) return; // logged out, or no longer allowed
      setTimeout(() => this.connect(), this.backoff.next(Math.random(), 1000));
    };
  }

  /** The server's clock, as of a message it stamped just now. */
  heard(generatedAt) {
    if (generatedAt) this.offset = Date.parse(generatedAt) - Date.now();
  }

  setStatus(text, offline) {
    if (!this.status) return;
    this.status.textContent = text;
    this.status.dataset.offline = offline ? 'yes' : 'no';
  }

  render(grid) {
    this.grid = grid;
    const L = this.labels;
    const head = el(
      'tr',
      {},
      el('th', { scope: 'col', class: 'sticky' }, L.student),
      el('th', { scope: 'col' }, L.now),
      el('th', { scope: 'col' }, L.last_active),
      ...grid.labs.map((lab) =>
        el('th', { scope: 'col', 'data-lab': String(lab.id) }, el('a', { href: lab.url }, lab.title)),
      ),
    );
    const rows = grid.students.map((s) => this.row(s));
    if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 3 + grid.labs.length, class: 'empty' }, L.none)));
    if (!grid.labs.length) rows.push(el('tr', {}, el('td', { colSpan: 3, class: 'empty' }, L.no_labs)));
    this.table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
    this.tick();
  }

  /** Redraw only the rows of these students (a start, a stop, a pass). */
  update(rows) {
    const merged = mergeRows(this.grid, rows);
    if (merged === null) return; // a student we do not show yet: the server sends the grid
    this.grid = merged;
    for (const s of rows) {
      const old = this.table.querySelector(`tr[data-student-id="${s.id}"]`);
      if (old) old.replaceWith(this.row(s));
    }
    this.tick();
  }

  row(s) {
    const L = this.labels;
    const titles = Object.fromEntries(this.grid.labs.map((l) => [l.id, l.title]));
    const last = s.last_active
      ? el('time', { dateTime: s.last_active, title: this.absolute.format(new Date(s.last_active)), 'data-ago': s.last_active })
      : L.never;
    return el(
      'tr',
      { 'data-student': s.username, 'data-student-id': String(s.id) },
      el('th', { scope: 'row', class: 'sticky' }, s.name, s.name !== s.username ? el('span', { class: 'muted' }, ` (${s.username})`) : null),
      el('td', { class: 'now' }, ...(s.sessions.length ? s.sessions.map((x) => this.sessionCell(x, titles)) : [el('span', { class: 'muted' }, L.idle)])),
      el('td', { class: 'when' }, last),
      ...this.grid.labs.map((lab) => this.labCell(s, lab)),
    );
  }

  sessionCell(session, titles) {
    const L = this.labels;
    const stop = el(
      'form',
      { method: 'post', action: session.stop_url, class: 'inline-form' },
      el('input', { type: 'hidden', name: 'csrfmiddlewaretoken', value: this.csrf }),
      el('button', { type: 'submit', class: 'btn btn-small btn-danger', 'data-action': 'stop' }, L.stop),
    );
    stop.addEventListener('submit', (ev) => {
      if (!window.confirm(L.confirm_stop)) ev.preventDefault();
    });
    const running = session.state === 'running';
    return el(
      'div',
      { class: 'live-session', 'data-state': session.state, 'data-lab': String(session.lab), 'data-session': session.id },
      el('strong', {}, titles[session.lab] || ''),
      ' ',
      el('span', { class: `badge state-${session.state}` }, session.state_label),
      ' ',
      running ? el('span', { class: 'left', 'data-expires': session.expires_at || '' }) : null,
      el(
        'span',
        { class: 'actions' },
        running ? el('a', { class: 'btn btn-small', href: session.watch_url, 'data-action': 'watch' }, L.watch) : null,
        el('a', { class: 'btn btn-small btn-ghost', href: session.recordings_url, 'data-action': 'recordings' }, L.recordings),
        stop,
      ),
    );
  }

  labCell(student, lab) {
    const L = this.labels;
    const cell = student.labs[String(lab.id)] || { passed: [], seconds_spent: 0 };
    const passed = new Set(cell.passed);
    const session = student.sessions.find((x) => x.lab === lab.id);
    const ids = { 'data-student': student.username, 'data-lab': String(lab.id) };
    const dots = lab.steps.map((step) => {
      const done = passed.has(step.number);
      return el('span', {
        ...ids,
        class: done ? 'dot passed' : 'dot',
        title: `${step.number}. ${step.title}`,
        'data-step': String(step.number),
        'data-state': done ? 'passed' : 'todo',
        'data-passed': done ? 'true' : 'false',
      });
    });
    const minutes = Math.round(cell.seconds_spent / 60);
    return el(
      'td',
      {
        ...ids,
        class: session ? 'lab-cell in-lab' : 'lab-cell',
        'data-state': session ? session.state : 'none',
        'data-passed-count': String(passed.size),
        'data-seconds-spent': String(cell.seconds_spent),
      },
      el('span', { class: 'dots', role: 'img', 'aria-label': fill(L.steps, { done: passed.size, total: lab.steps.length }), title: fill(L.steps, { done: passed.size, total: lab.steps.length }) }, ...dots),
      cell.seconds_spent ? el('span', { class: 'spent muted' }, fill(L.minutes, { n: minutes })) : null,
    );
  }

  /** Every second: time left counts down; every so often "last active" moves on. */
  tick() {
    const now = Date.now();
    for (const span of this.table.querySelectorAll('.left[data-expires]')) {
      const left = secondsUntil(span.dataset.expires, now, this.offset);
      span.textContent = left === null ? '' : fill(this.labels.left, { time: clock(left) });
      span.dataset.low = left !== null && left < 300 ? 'yes' : 'no';
    }
    for (const time of this.table.querySelectorAll('time[data-ago]')) {
      const [value, unit] = ago(time.dataset.ago, now, this.offset);
      time.textContent = this.relative.format(value, unit);
    }
  }
}

if (typeof document !== 'undefined') {
  const root = document.getElementById('class-live');
  if (root) window.classLive = new ClassLive(root);
}
