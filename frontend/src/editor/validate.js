// *Validate*: the server runs the lab validator on the saved lab in a fresh sandbox (each
// step: its check must fail, its .solve run, then its check pass). The page polls the run's
// row once a second, shows the steps done so far, then the report with broken steps named.
import { request } from '../http.js';

const POLL_MS = 1000;

export class Validating {
  constructor(page) {
    this.page = page;
    this.t = page.t;
    this.url = page.data.urls.validate;
    this.section = page.root.querySelector('[data-role="validation"]');
    this.button = page.root.querySelector('[data-action="validate"]');
  }

  start() {
    if (!this.url || !this.button || !this.section) return;
    this.progress = this.section.querySelector('[data-role="validation-progress"]');
    this.summary = this.section.querySelector('[data-role="validation-summary"]');
    this.table = this.section.querySelector('[data-role="validation-report"]');
    this.button.addEventListener('click', () => this.run());
  }

  async run() {
    this.button.disabled = true;
    this.section.hidden = false;
    this.progress.hidden = false;
    this.setProgress(5, this.t.validating);
    this.summary.textContent = '';
    this.summary.className = '';
    this.table.hidden = true;
    this.section.scrollIntoView({ behavior: 'smooth', block: 'start' });
    try {
      const res = await request('POST', this.url, {}, this.page.t.network);
      await this.poll(res.url);
    } catch (err) {
      this.finish(this.t.validate_error.replace('%(e)s', err.message), 'is-error');
    }
  }

  async poll(url) {
    for (;;) {
      let row;
      try {
        row = await request('GET', url, null, this.t.network);
      } catch {
        await sleep(POLL_MS * 3);
        continue;
      }
      if (row.done) return this.report(row);
      const done = row.steps.length;
      const total = this.page.root.querySelectorAll('.ed-step[data-stem]:not([hidden])').length || 1;
      const label = done ? this.t.validating_step.replace('%(n)s', String(done)) : this.t.validating;
      this.setProgress(Math.min(95, 10 + (85 * done) / total), label);
      this.rows(row.steps);
      await sleep(POLL_MS);
    }
  }

  setProgress(percent, message) {
    this.progress.querySelector('.bar').style.width = `${percent}%`;
    this.progress.querySelector('.msg').textContent = message;
  }

  report(row) {
    const steps = (row.report && Array.isArray(row.report.steps) && row.report.steps) || row.steps;
    this.rows(steps);
    if (row.status === 'error') {
      return this.finish(this.t.validate_error.replace('%(e)s', row.message), 'is-error');
    }
    if (row.ok) return this.finish(this.t.validate_ok, 'is-passed');
    const broken = steps.filter(isBroken).map((s) => `${s.number}. ${s.title || ''}`.trim());
    this.finish(this.t.validate_broken.replace('%(steps)s', broken.join(', ') || '—'), 'is-failed');
  }

  finish(text, kind) {
    this.progress.hidden = true;
    this.summary.textContent = text;
    this.summary.className = `check-result ${kind}`;
    this.button.disabled = false;
  }

  rows(steps) {
    const body = this.table.querySelector('tbody');
    body.replaceChildren();
    for (const step of steps || []) {
      const tr = document.createElement('tr');
      if (isBroken(step)) tr.className = 'ed-broken';
      const cells = [
        `${step.number}. ${step.title || ''}`,
        verdict(step.passed_before, this.t),
        step.solve_exit === null || step.solve_exit === undefined ? '—' : String(step.solve_exit),
        verdict(step.passed_after, this.t),
        typeof step.seconds === 'number' ? step.seconds.toFixed(1) : '—',
      ];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      const last = document.createElement('td');
      if (step.problem) {
        const p = document.createElement('strong');
        p.textContent = String(step.problem);
        last.append(p);
      }
      if (step.outputs && Object.keys(step.outputs).length) {
        const details = document.createElement('details');
        const summary = document.createElement('summary');
        summary.textContent = this.t.output;
        const pre = document.createElement('pre');
        pre.textContent = formatOutputs(step.outputs);
        details.append(summary, pre);
        last.append(details);
      }
      tr.append(last);
      body.append(tr);
    }
    this.table.hidden = !(steps && steps.length);
  }
}

function isBroken(step) {
  return Boolean(step.problem) || step.passed_before === true || step.passed_after === false;
}

function verdict(value, t) {
  if (value === true) return t.yes;
  if (value === false) return t.no;
  return '—';
}

function formatOutputs(outputs) {
  if (typeof outputs === 'string') return outputs;
  if (Array.isArray(outputs)) return outputs.map(String).join('\n');
  return Object.entries(outputs)
    .map(([name, text]) => `── ${name}\n${typeof text === 'string' ? text : JSON.stringify(text)}`)
    .join('\n');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
