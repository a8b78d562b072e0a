// *Try it*: run a step's check text as it is in the editor (saved or not) in the author's own
// sandbox of the lab. Without a running session the page offers *Start this lab* (the API's
// start endpoint, as the lab page uses it) and follows the session until it runs.
import { request } from '../http.js';

const SESSION_POLL_MS = 1500;
const LIVE = new Set(['requested', 'starting', 'running']);

export class Trying {
  constructor(page) {
    this.page = page;
    this.t = page.t;
    this.urls = page.data.urls;
    this.box = page.root.querySelector('[data-role="sandbox"]');
    this.state = this.box && this.box.querySelector('[data-role="sandbox-state"]');
    this.startButton = this.box && this.box.querySelector('[data-action="start-lab"]');
    this.sessionUrl = page.data.session_url || '';
  }

  start() {
    if (!this.urls.try) return;
    if (this.startButton) this.startButton.addEventListener('click', () => this.startLab());
    if (this.sessionUrl) this.follow();
  }

  wire(card) {
    const button = card.querySelector('[data-action="try"]');
    if (!button) return;
    if (!this.urls.try) {
      button.disabled = true;
      return;
    }
    button.addEventListener('click', () => this.tryStep(card, button));
  }

  async tryStep(card, button) {
    const out = card.querySelector('[data-role="try-result"]');
    const check = card.querySelector('.ed-file[data-part="check"]');
    const file = this.page.files.get(check.dataset.file);
    const number = Number(card.dataset.stem.split('-')[0]);
    out.className = 'check-result is-running';
    out.textContent = this.t.running;
    button.disabled = true;
    try {
      const body = { number, script: file ? file.editor.text() : '' };
      const res = await request('POST', this.urls.try, body, this.t.network);
      const verdict = res.passed ? this.t.passed : res.timed_out ? this.t.timed_out : this.t.failed;
      this.result(out, res.passed ? 'is-passed' : 'is-failed', verdict, res.output);
    } catch (err) {
      this.result(out, 'is-error', err.message, '');
      if (err.code === 'no_session' || err.code === 'not_running') this.offerStart();
    } finally {
      button.disabled = false;
    }
  }

  result(out, kind, text, output) {
    out.className = `check-result ${kind}`;
    out.replaceChildren();
    const strong = document.createElement('strong');
    strong.textContent = text;
    out.append(strong);
    if (output) {
      const pre = document.createElement('pre');
      pre.textContent = output;
      out.append(pre);
    }
  }

  offerStart() {
    if (this.startButton) this.startButton.hidden = false;
    if (this.box) this.box.scrollIntoView({ behavior: 'smooth', block: 'center' });
  }

  async startLab() {
    this.startButton.disabled = true;
    this.state.textContent = this.t.starting;
    try {
      const session = await request('POST', this.urls.start, {}, this.t.network);
      this.sessionUrl = session.url;
      this.show(session);
      this.follow();
    } catch (err) {
      this.state.textContent = this.t.start_failed.replace('%(e)s', err.message);
      this.startButton.disabled = false;
    }
  }

  async follow() {
    try {
      const session = await request('GET', this.sessionUrl, null, this.t.network);
      this.show(session);
      if (session.state === 'requested' || session.state === 'starting') {
        setTimeout(() => this.follow(), SESSION_POLL_MS);
      }
    } catch {
      setTimeout(() => this.follow(), SESSION_POLL_MS * 2);
    }
  }

  show(session) {
    const live = LIVE.has(session.state);
    if (this.startButton) {
      this.startButton.hidden = live;
      this.startButton.disabled = false;
    }
    if (session.state === 'running') {
      this.state.textContent = this.t.started;
    } else if (session.state === 'failed') {
      this.state.textContent = this.t.start_failed.replace('%(e)s', session.failure_message || '');
    } else {
      const progress = session.progress && session.progress.message;
      this.state.textContent = `${session.state_label}${progress ? ` · ${progress}` : ''}`;
    }
  }
}
