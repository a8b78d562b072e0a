// The live class page: the grid of students × labs × steps, re-drawn whenever the server
// pushes a fresh grid over /ws/classes/<pk>/live/ (apps/teaching/consumers.py).
//
// DOM contract (templates/teaching/class_detail.html): #class-live[data-url] holding
// <script id=class-labels> (translated words), <script id=class-grid> (the first grid) and
// table[data-role=grid]; [data-role=live-status] anywhere. Cells carry data-student,
// data-lab, data-step and data-passed; a running session's row part carries data-state.

import { Backoff, buildWsUrl } from './flow.js';

const readJson = (id) => JSON.parse(document.getElementById(id).textContent);
const fill = (fmt, values) => fmt.replace(/%\((\w+)\)s/g, (m, k) => (k in values ? String(values[k]) : m));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function clock(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

export class ClassLive {
  constructor(root) {
    this.root = root;
    this.labels = readJson('class-labels');
    this.table = root.querySelector('[data-role=grid]');
    this.status = document.querySelector('[data-role=live-status]');
    this.csrf = (document.querySelector('input[name=csrfmiddlewaretoken]') || {}).value || '';
    this.backoff = new Backoff();
    this.render(readJson('class-grid'));
    this.connect();
    setInterval(() => this.tick(), 1000);
  }

  connect() {
    const ws = new WebSocket(buildWsUrl(this.root.dataset.url, window.location));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === 'grid') {
        this.backoff.reset();
        this.setStatus(this.labels.live, false);
        this.render(msg.grid);
      }
    };
    ws.onclose = (ev) => {
      this.setStatus(this.labels.offline, true);
      if (ev.code === 4001 || ev.code === 4003) return;
      setTimeout(() => this.connect(), this.backoff.next(Math.random(), 1000));
    };
  }

  setStatus(text, offline) {
    if (!this.status) return;
    this.status.textContent = text;
    this.status.dataset.offline = offline ? 'yes' : 'no';
  }

  render(grid) {
    this.grid = grid;
    this.receivedAt = Date.now();
    const L = this.labels;
    const head = el(
      'tr',
      {},
      el('th', { scope: 'col', class: 'sticky' }, L.student),
      el('th', { scope: 'col' }, L.now),
      el('th', { scope: 'col' }, L.last_active),
      ...grid.labs.map((lab) => el('th', { scope: 'col', 'data-lab': String(lab.id) }, el('a', { href: lab.url }, lab.title))),
    );
    const labTitle = Object.fromEntries(grid.labs.map((l) => [l.id, l.title]));
    const rows = grid.students.map((s) =>
      el(
        'tr',
        { 'data-student': s.username },
        el('th', { scope: 'row', class: 'sticky' }, s.name, s.name !== s.username ? el('span', { class: 'muted' }, ` (${s.username})`) : null),
        el('td', { class: 'now' }, ...(s.sessions.length ? s.sessions.map((x) => this.sessionCell(x, labTitle)) : [el('span', { class: 'muted' }, L.idle)])),
        el('td', { class: 'when' }, s.last_active ? new Date(s.last_active).toLocaleString() : L.never),
        ...grid.labs.map((lab) => this.labCell(s, lab)),
      ),
    );
    if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 3 + grid.labs.length, class: 'empty' }, L.none)));
    if (!grid.labs.length) rows.push(el('tr', {}, el('td', { colSpan: 3, class: 'empty' }, L.no_labs)));
    this.table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
    this.tick();
  }

  sessionCell(session, labTitle) {
    const L = this.labels;
    const left = el('span', { class: 'left', 'data-seconds': String(session.seconds_left ?? '') });
    const stop = el(
      'form',
      { method: 'post', action: session.stop_url, class: 'inline-form' },
      el('input', { type: 'hidden', name: 'csrfmiddlewaretoken', value: this.csrf }),
      el('button', { type: 'submit', class: 'btn btn-small btn-danger' }, L.stop),
    );
    stop.addEventListener('submit', (ev) => {
      if (!window.confirm(L.confirm_stop)) ev.preventDefault();
    });
    const running = session.state === 'running';
    return el(
      'div',
      { class: 'live-session', 'data-state': session.state, 'data-lab': String(session.lab) },
      el('strong', {}, labTitle[session.lab] || ''),
      ' ',
      el('span', { class: `badge state-${session.state}` }, session.state_label),
      ' ',
      left,
      el(
        'span',
        { class: 'actions' },
        running ? el('a', { class: 'btn btn-small', href: session.watch_url, 'data-action': 'watch' }, L.watch) : null,
        el('a', { class: 'btn btn-small btn-ghost', href: session.recordings_url }, L.recordings),
        stop,
      ),
    );
  }

  labCell(student, lab) {
    const cell = student.labs[String(lab.id)] || { passed: [], seconds_spent: 0 };
    const passed = new Set(cell.passed);
    const dots = lab.steps.map((step) =>
      el('span', {
        class: passed.has(step.number) ? 'dot passed' : 'dot',
        title: `${step.number}. ${step.title}`,
        'data-step': String(step.number),
        'data-passed': passed.has(step.number) ? 'true' : 'false',
      }),
    );
    const L = this.labels;
    return el(
      'td',
      { class: 'lab-cell', 'data-lab': String(lab.id), 'data-passed-count': String(passed.size) },
      el('span', { class: 'dots', title: fill(L.steps, { done: passed.size, total: lab.steps.length }) }, ...dots),
      cell.seconds_spent ? el('span', { class: 'spent muted' }, fill(L.minutes, { n: Math.round(cell.seconds_spent / 60) })) : null,
    );
  }

  tick() {
    const gone = (Date.now() - this.receivedAt) / 1000;
    for (const span of this.table.querySelectorAll('.left[data-seconds]')) {
      const s = span.dataset.seconds;
      span.textContent = s === '' ? '' : fill(this.labels.left, { time: clock(Number(s) - gone) });
    }
  }
}

const root = document.getElementById('class-live');
if (root) window.classLive = new ClassLive(root);
