/*
 * Lab page controller (entry point of dist/lab.js; global `LabSite`).
 *
 * DOM contract: what the template (templates/courses/lab.html) renders. data-role /
 * data-action attributes are what this script looks for; classes are styled by app.css.
 * Elements marked (optional) may be left out.
 *
 *   <div class="lab-layout">                      two columns: steps left, #lab-app right
 *     <aside class="lab-steps">
 *       …title, summary…
 *       <span class="badge" data-role="passed-count">2/5 done</span>          (optional)
 *       <section class="step" data-step="1" data-passed="false">
 *         <h3><span class="step-number">1</span> …title…</h3>   (.step-number optional: CSS numbers steps)
 *         <div class="step-body">rendered markdown; commands as <pre><code class="language-bash">…</code></pre></div>
 *         <button class="btn" data-action="check" data-step="1">…</button>
 *         <div class="check-result" data-role="check-result"></div>
 *       </section>
 *     </aside>
 *     <section id="lab-app" data-lab-id="3" data-start-url="/api/labs/3/sessions/"
 *              data-session="{…session JSON as the API returns it…}"   (or data-session="")
 *              data-logged-in="true|false"       (optional; "false" keeps Start disabled)
 *              data-login-url="/accounts/login/" (optional; the "Log in" link after a logout)
 *              data-max-tabs="4">                (optional; LABSITE_MAX_TABS, at most 4)
 *       <div class="lab-toolbar">
 *         <span class="lab-state" data-role="state"></span>
 *         <span class="lab-timer" data-role="time-left"></span>
 *         <span class="spacer"></span>                                          (optional)
 *         <button class="btn btn-primary" data-action="start">…</button>
 *         <button class="btn" data-action="extend">…</button>
 *         <button class="btn" data-action="reset">…</button>
 *         <button class="btn btn-danger" data-action="stop">…</button>
 *       </div>
 *       <div class="lab-progress" data-role="progress" hidden><div class="bar"></div><span class="msg"></span></div>
 *       <div class="lab-watchers" data-role="watchers" hidden></div>            (optional; made if missing)
 *       <div class="lab-message" data-role="message" hidden></div>
 *       <div class="terminal-tabs" data-role="tabs"></div>
 *       <div class="terminal-area" data-role="terminals">
 *         <div class="terminal-placeholder">…press Start…</div>                 (optional)
 *       </div>
 *     </section>
 *   </div>
 *
 * Behaviour the template can rely on:
 * - Toolbar buttons are shown only when they apply (Start: no active session; Extend and
 *   Reset: running; Stop: requested/starting/running) via the `hidden` attribute, and
 *   disabled while a request is in flight (Extend also when !session.can_extend). Their
 *   labels come from the template. Check buttons are enabled only while running.
 * - The steps are the `.lab-steps` inside the closest `.lab-layout` (else anywhere).
 * - CSRF: the `csrftoken` cookie, else an <input name="csrfmiddlewaretoken"> in the page.
 * - API paths: session.url if the session has one, else /api/sessions/<id>/.
 * - Load order: Django's JavaScript catalog (window.gettext) before dist/lab.js (defer is
 *   fine); stylesheets dist/app.css and dist/xterm.css in <head>.
 * - The script sets #lab-app[data-state] = session state or "none", and on each
 *   .terminal-pane and .terminal-tab: data-state = idle|connecting|attached|waiting|ended;
 *   an ended .terminal-pane also gets data-end-reason (closePolicy's reason: "taken",
 *   "ended", "unauthenticated"…) when a close code ended it.
 * - Close codes (docs/terminal-protocol.md): 4010 stops the terminal and the page shows why
 *   the session ended; 4012 offers "Take it back" (one reconnect per click); 4001 shows a
 *   "Log in" link. None of them reconnects by itself.
 * - Check errors: the server's JSON `error.message` is shown under the step; a 429 is
 *   never retried by the page (the button rests for the Retry-After time, if sent).
 */

import { ACTIVE_STATES, FINAL_STATES, MAX_TABS, MessageType, SessionState, STATUS_ATTACHED } from './protocol.js';
import {
  Backoff,
  buildWsUrl,
  closePolicy,
  commandLines,
  formatDuration,
  parseSessionAttr,
  readCookie,
  retryAfterMs,
  timerLevel,
} from './flow.js';
import { gettext, interpolate } from './i18n.js';
import { apiErrorMessage, endMessage } from './messages.js';
import { TerminalConnection } from './terminal.js';
import { WatchersNotice } from './watchers.js';

export { TerminalConnection };

const POLL_FAST_MS = 5_000;
const POLL_SLOW_MS = 30_000;
const LINE_DELAY_MS = 40;
// ```bash blocks: <pre><code class="language-bash">, plain or inside Pygments'
// <div class="codehilite"> (with a formatter that keeps the language class).
const RUNNABLE_LANGS = ['language-bash', 'language-sh', 'language-shell'];

class ApiError extends Error {
  constructor(message, status = 0, code = '', retryAfter = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // milliseconds the server asked to wait (Retry-After)
  }
}

export class LabController {
  /** @param {HTMLElement} root the #lab-app element */
  constructor(root) {
    this.root = root;
    this.startUrl = root.dataset.startUrl;
    this.loggedIn = root.dataset.loggedIn !== 'false';
    this.loginUrl = root.dataset.loginUrl || '/accounts/login/';
    this.maxTabs = Math.min(MAX_TABS, Number(root.dataset.maxTabs) || MAX_TABS);
    this.session = parseSessionAttr(root.dataset.session || '');

    const q = (sel) => root.querySelector(sel);
    this.stateEl = q('[data-role="state"]');
    this.timerEl = q('[data-role="time-left"]');
    this.progressEl = q('[data-role="progress"]');
    this.messageEl = q('[data-role="message"]');
    // Who watches this terminal (an instructor, with the student's consent to type).
    let watchersEl = q('[data-role="watchers"]');
    if (!watchersEl) {
      watchersEl = document.createElement('div');
      watchersEl.className = 'lab-watchers';
      watchersEl.dataset.role = 'watchers';
      watchersEl.setAttribute('role', 'status');
      watchersEl.setAttribute('aria-live', 'polite');
      watchersEl.hidden = true;
      this.messageEl.before(watchersEl);
    }
    this.watchers = new WatchersNotice(watchersEl);
    this.tabsEl = q('[data-role="tabs"]');
    this.termsEl = q('[data-role="terminals"]');
    this.placeholderEl = this.termsEl.querySelector('.terminal-placeholder');
    this.buttons = {
      start: q('[data-action="start"]'),
      extend: q('[data-action="extend"]'),
      reset: q('[data-action="reset"]'),
      stop: q('[data-action="stop"]'),
    };
    const layout = root.closest('.lab-layout');
    this.stepsEl = (layout && layout.querySelector('.lab-steps')) || document.querySelector('.lab-steps');
    this.passedCountEl = (layout || document).querySelector('[data-role="passed-count"]');

    /** @type {{tab: number, conn: TerminalConnection, pane: HTMLElement, button: HTMLElement}[]} */
    this.terminals = [];
    this.activeTab = 0;
    this.busy = false;
    this.checking = new Set();
    this.checkResting = new Map(); // step -> Date.now() until which its button rests (429)
    this.deadline = 0; // Date.now() value when the time is up
    this.progress = null;

    this._events = null;
    this._eventsGen = 0;
    this._eventsBackoff = new Backoff();
    this._eventsTimer = 0;
    this._pollTimer = 0;
    this._following = null; // id of the session being followed
    this._expiredPolled = false;

    this._buildTabsBar();
    this._bind();
    this._decorateCode();
    setInterval(() => this._tick(), 1000);

    if (this.session) this._setDeadline(this.session);
    if (this.session && isActive(this.session)) this._follow(this.session);
    else this._render();
  }

  // ---------------------------------------------------------------- actions

  async start() {
    await this._action(async () => {
      const session = await api('POST', this.startUrl);
      this._disposeTerminals();
      this._clearCheckResults();
      this._follow(session);
    });
  }

  async extend() {
    await this._action(async () => {
      const data = await api('POST', this._sessionUrl('extend/'));
      if (data && data.id) this._update(data);
      else await this._poll();
    });
  }

  async reset() {
    if (!window.confirm(gettext('Reset the lab? The sandbox will be replaced by a fresh one and your changes in it will be lost.'))) return;
    await this._action(async () => {
      const session = await api('POST', this._sessionUrl('reset/'));
      // Keep the open tabs: point each at the new session; they reconnect once it runs.
      for (const t of this.terminals) t.conn.setUrl(terminalPath(session, t.tab));
      this._clearCheckResults();
      this._follow(session);
    });
  }

  async stop() {
    if (!window.confirm(gettext('Stop the lab? The sandbox and everything in it will be deleted.'))) return;
    await this._action(async () => {
      const data = await api('POST', this._sessionUrl('stop/'));
      if (data && data.id) this._update(data);
      else await this._poll();
    });
  }

  async check(step, button) {
    if (!this.session || this.checking.has(step) || this._resting(step)) return;
    const section = button.closest('.step');
    const result = section && section.querySelector('[data-role="check-result"]');
    this.checking.add(step);
    this._renderChecks();
    if (result) showCheckRunning(result);
    try {
      const data = await api('POST', this._sessionUrl(`steps/${encodeURIComponent(step)}/check/`));
      if (result) showCheckResult(result, data);
      if (data && data.passed && section) {
        section.dataset.passed = 'true';
        this._renderPassedCount();
      }
      if (section) showTriesLeft(section, data);
    } catch (err) {
      // The server's message (check_busy, check_rate, sandbox_ended, check_failed,
      // engine_unavailable…); never retried from here: the student decides when to try again.
      if (result) showCheckError(result, err.message, err.status === 429 ? 'is-wait' : 'is-error');
      if (err.status === 429 && err.retryAfter > 0) {
        this.checkResting.set(step, Date.now() + err.retryAfter);
        setTimeout(() => this._renderChecks(), err.retryAfter + 50);
      }
      if (err.code === 'sandbox_ended') this._poll();
    } finally {
      this.checking.delete(step);
      this._renderChecks();
    }
  }

  /** Type the lines of a command block into the active terminal. */
  run(text) {
    const t = this._active();
    if (!t || !t.conn.connected) {
      this._flashMessage(gettext('Start the lab and wait for the terminal to connect, then try again.'));
      return false;
    }
    const lines = commandLines(text);
    lines.forEach((line, i) => {
      setTimeout(() => t.conn.sendText(`${line}\r`), i * LINE_DELAY_MS);
    });
    t.conn.focus();
    return true;
  }

  /** Open terminal tab `n` (default: the next free number) and show it. */
  openTab(n) {
    if (!this.session || this.session.state !== SessionState.RUNNING) return null;
    if (n === undefined) {
      n = 1;
      while (this.terminals.some((t) => t.tab === n)) n++;
    }
    if (n > this.maxTabs || this.terminals.some((t) => t.tab === n)) return null;

    const pane = document.createElement('div');
    pane.className = 'terminal-pane';
    pane.dataset.tab = String(n);
    pane.setAttribute('role', 'tabpanel');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'terminal-tab';
    button.dataset.tab = String(n);
    button.setAttribute('role', 'tab');
    button.textContent = interpolate(gettext('Terminal %(n)s'), { n });
    button.addEventListener('click', () => this.switchTab(n));
    this.tabsEl.insertBefore(button, this.addTabButton);
    this.tabsEl.hidden = false; // before the terminal measures its space
    this.termsEl.append(pane);
    // The pane must be visible while xterm.js measures its font.
    for (const t of this.terminals) t.pane.hidden = true;

    const conn = new TerminalConnection(pane, {
      url: terminalPath(this.session, n),
      loginUrl: this.loginUrl,
      onState: (state) => {
        button.dataset.state = state;
      },
      onStatusMessage: (msg) => {
        if (msg.state !== STATUS_ATTACHED) this._poll();
      },
      onClosed: (policy) => this._terminalClosed(policy, conn),
    });
    const entry = { tab: n, conn, pane, button };
    this.terminals.push(entry);
    this.terminals.sort((a, b) => a.tab - b.tab);
    conn.connect();
    this.switchTab(n);
    this._render();
    return conn;
  }

  switchTab(n) {
    const target = this.terminals.find((t) => t.tab === n);
    if (!target) return;
    this.activeTab = n;
    for (const t of this.terminals) {
      const on = t === target;
      t.pane.hidden = !on;
      t.button.classList.toggle('is-active', on);
      t.button.setAttribute('aria-selected', on ? 'true' : 'false');
    }
    requestAnimationFrame(() => {
      target.conn.fit();
      target.conn.focus();
    });
  }

  /** A terminal closed for good (4001, 4003, 4004, 4010, 4012): see what the session says. */
  _terminalClosed(policy, conn) {
    const s = this.session;
    if (policy.reason === 'ended') {
      // The sandbox ended: say why as soon as the session does (now, or at the next poll).
      if (s && FINAL_STATES.includes(s.state)) conn.disconnect(endMessage(s));
      else this._pollSoon();
    } else if (policy.reason === 'unauthenticated') {
      this._pollSoon(); // answers 401: the page stops following and says so
    }
  }

  // --------------------------------------------------------- session follow

  _follow(session) {
    this._update(session, true);
    if (!isActive(session) || this._following === session.id) return;
    this._following = session.id;
    this._openEvents();
    this._schedulePoll();
  }

  _unfollow() {
    this._following = null;
    this._closeEvents();
    clearTimeout(this._pollTimer);
  }

  _closeEvents() {
    if (this.watchers) this.watchers.clear();
    this._eventsGen++;
    clearTimeout(this._eventsTimer);
    if (this._events) {
      try {
        this._events.close(1000);
      } catch {
        // already closing
      }
      this._events = null;
    }
  }

  /** A fresh session object arrived (API response, events socket or poll). */
  _update(session, force = false) {
    if (!session || !session.id) return;
    if (!force && this.session && session.id !== this.session.id) return; // stale (before a reset)
    const prevState = this.session && this.session.id === session.id ? this.session.state : null;
    this.session = session;
    this._expiredPolled = false;
    this._setDeadline(session);
    if (session.progress) this.progress = session.progress;
    this._syncSteps(session);
    this._render(); // first, so that terminals open into the final layout

    if (session.state === SessionState.RUNNING) {
      if (!this.terminals.length) this.openTab(1);
      else if (prevState !== SessionState.RUNNING) {
        // After a reset: the kept tabs reconnect to the new sandbox.
        for (const t of this.terminals) t.conn.reconnectNow();
        const active = this._active();
        if (active) active.conn.focus();
      }
    } else if (FINAL_STATES.includes(session.state)) {
      for (const t of this.terminals) t.conn.disconnect(endMessage(session));
      this._unfollow();
    }
    this._render();
  }

  _openEvents() {
    const session = this.session;
    this._closeEvents();
    if (!session || !session.events_url || !isActive(session)) return;
    const gen = this._eventsGen;
    let ws;
    try {
      ws = new WebSocket(buildWsUrl(session.events_url, window.location));
    } catch {
      return;
    }
    this._events = ws;
    ws.onmessage = (ev) => {
      if (gen !== this._eventsGen || typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === MessageType.SESSION) {
        this._eventsBackoff.reset();
        this._update(msg.session);
      } else if (msg.type === MessageType.PROGRESS) {
        this.progress = { percent: msg.percent, message: msg.message };
        this._renderProgress();
      } else if (msg.type === MessageType.WATCHERS) {
        this.watchers.update(msg.watchers || [], (answer) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(answer));
        });
      }
    };
    ws.onclose = (ev) => {
      if (gen !== this._eventsGen) return;
      this._events = null;
      this.watchers.clear(); // told again on reconnect
      this._schedulePoll(0);
      const policy = closePolicy(ev.code);
      if (!policy.reconnect || !this.session || !isActive(this.session)) return;
      const delay = this._eventsBackoff.next(Math.random(), policy.minDelay);
      this._eventsTimer = setTimeout(() => {
        if (gen === this._eventsGen) this._openEvents();
      }, delay);
    };
  }

  /** One poll right away, however many terminals ask at once. */
  _pollSoon() {
    if (this._following) this._schedulePoll(0);
    else this._poll();
  }

  _schedulePoll(delay) {
    clearTimeout(this._pollTimer);
    if (!this._following) return;
    if (delay === undefined) {
      const eventsOpen = this._events && this._events.readyState === WebSocket.OPEN;
      const steady = this.session && this.session.state === SessionState.RUNNING;
      delay = eventsOpen && steady ? POLL_SLOW_MS : POLL_FAST_MS;
    }
    this._pollTimer = setTimeout(() => this._poll(), delay);
  }

  async _poll() {
    const session = this.session;
    if (!session) return;
    try {
      const data = await api('GET', this._sessionUrl(''));
      this._update(data);
    } catch (err) {
      if (err.status === 404 || err.status === 401 || err.status === 403) {
        if (this.session && this.session.id === session.id) {
          this._unfollow();
          this._showMessage(err.message, 'error');
        }
        return;
      }
      // network trouble: try again at the next poll
    }
    if (this._following) this._schedulePoll();
  }

  // ----------------------------------------------------------------- render

  _render() {
    const s = this.session;
    const state = s ? s.state : '';
    const active = !!s && isActive(s);
    const running = state === SessionState.RUNNING;
    this.root.dataset.state = state || 'none';

    if (this.stateEl) this.stateEl.textContent = s ? s.state_label || state : gettext('Not started');

    const stoppable = state === SessionState.REQUESTED || state === SessionState.STARTING || running;
    // Buttons that make no sense in this state are hidden; the others are disabled while busy.
    showButton(this.buttons.start, !active, this.busy || !this.loggedIn);
    showButton(this.buttons.extend, running, this.busy || !(s && s.can_extend));
    showButton(this.buttons.reset, running, this.busy);
    showButton(this.buttons.stop, stoppable, this.busy);
    if (this.placeholderEl) {
      this.placeholderEl.hidden = this.terminals.length > 0 || state === SessionState.REQUESTED || state === SessionState.STARTING;
    }

    this._renderProgress();
    this._renderTimer();
    this._renderChecks();
    this.addTabButton.hidden = !running || this.terminals.length >= this.maxTabs;
    this.tabsEl.hidden = !this.terminals.length;

    if (state === SessionState.FAILED) {
      this._showMessage(s.failure_message || gettext('The lab could not be started.'), 'error');
    } else if (state === SessionState.EXPIRED || state === SessionState.STOPPED) {
      if (!this._messageIsError) this._showMessage(endMessage(s), 'info');
    } else if (!this._messageIsError) {
      this._hideMessage();
    }
  }

  _renderProgress() {
    if (!this.progressEl) return;
    const s = this.session;
    const starting = !!s && (s.state === SessionState.REQUESTED || s.state === SessionState.STARTING);
    this.progressEl.hidden = !starting;
    if (!starting) return;
    const p = this.progress || {};
    const percent = Math.max(0, Math.min(100, Number(p.percent) || 0));
    const bar = this.progressEl.querySelector('.bar');
    const msg = this.progressEl.querySelector('.msg');
    if (bar) bar.style.width = `${Math.max(percent, 3)}%`;
    this.progressEl.setAttribute('role', 'progressbar');
    this.progressEl.setAttribute('aria-valuenow', String(percent));
    this.progressEl.setAttribute('aria-valuemin', '0');
    this.progressEl.setAttribute('aria-valuemax', '100');
    if (msg) msg.textContent = p.message || gettext('Starting the sandbox…');
  }

  _renderTimer() {
    const el = this.timerEl;
    if (!el) return;
    const s = this.session;
    if (!s || !isActive(s) || !this.deadline) {
      el.textContent = '';
      el.hidden = true;
      return;
    }
    const secs = Math.max(0, Math.round((this.deadline - Date.now()) / 1000));
    el.hidden = false;
    el.textContent = interpolate(gettext('%(time)s left'), { time: formatDuration(secs) });
    el.title = gettext('Time left before the sandbox is removed');
    const level = timerLevel(secs);
    el.classList.toggle('is-warning', level === 'warning');
    el.classList.toggle('is-danger', level === 'danger');
  }

  _renderChecks() {
    if (!this.stepsEl) return;
    const running = !!this.session && this.session.state === SessionState.RUNNING;
    for (const b of this.stepsEl.querySelectorAll('[data-action="check"]')) {
      const checking = this.checking.has(b.dataset.step);
      b.disabled = !running || checking || this._resting(b.dataset.step);
      b.classList.toggle('is-busy', checking);
      b.setAttribute('aria-busy', checking ? 'true' : 'false');
    }
  }

  _tick() {
    this._renderTimer();
    const s = this.session;
    if (s && s.state === SessionState.RUNNING && this.deadline && Date.now() >= this.deadline && !this._expiredPolled) {
      this._expiredPolled = true;
      this._poll();
    }
  }

  /** True while a step's Check button rests after a 429 with Retry-After. */
  _resting(step) {
    const until = this.checkResting.get(step);
    if (until && until > Date.now()) return true;
    this.checkResting.delete(step);
    return false;
  }

  _setDeadline(session) {
    this.deadline = typeof session.seconds_left === 'number' ? Date.now() + session.seconds_left * 1000 : 0;
  }

  _syncSteps(session) {
    if (!this.stepsEl || !Array.isArray(session.steps)) return;
    for (const st of session.steps) {
      const sec = this.stepsEl.querySelector(`.step[data-step="${Number(st.number)}"]`);
      if (sec) sec.dataset.passed = st.passed ? 'true' : 'false';
    }
    this._renderPassedCount();
  }

  /** The optional "2/5 done" badge ([data-role="passed-count"]). */
  _renderPassedCount() {
    if (!this.passedCountEl || !this.stepsEl) return;
    const steps = this.stepsEl.querySelectorAll('.step[data-step]');
    const done = this.stepsEl.querySelectorAll('.step[data-step][data-passed="true"]').length;
    this.passedCountEl.textContent = interpolate(gettext('%(done)s/%(total)s done'), { done, total: steps.length });
    this.passedCountEl.classList.toggle('badge-passed', steps.length > 0 && done === steps.length);
  }

  _showMessage(text, kind) {
    if (!this.messageEl) return;
    clearTimeout(this._flashTimer);
    this._messageIsError = kind === 'error';
    this.messageEl.hidden = !text;
    this.messageEl.textContent = text || '';
    this.messageEl.className = `lab-message lab-message-${kind}`;
    this.messageEl.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  }

  _hideMessage() {
    if (!this.messageEl) return;
    this._messageIsError = false;
    this.messageEl.hidden = true;
    this.messageEl.textContent = '';
  }

  _flashMessage(text) {
    this._showMessage(text, 'info');
    this._flashTimer = setTimeout(() => this._render(), 5000);
  }

  // ------------------------------------------------------------------ setup

  _buildTabsBar() {
    this.termsEl.dataset.placeholder = gettext('Press “Start lab” to get your own sandbox. A terminal will appear here.');
    this.tabsEl.setAttribute('role', 'tablist');
    this.addTabButton = document.createElement('button');
    this.addTabButton.type = 'button';
    this.addTabButton.className = 'terminal-tab terminal-tab-add';
    this.addTabButton.textContent = '+';
    this.addTabButton.title = gettext('Open another terminal');
    this.addTabButton.setAttribute('aria-label', gettext('Open another terminal'));
    this.addTabButton.addEventListener('click', () => this.openTab());
    this.tabsEl.append(this.addTabButton);
  }

  _bind() {
    const on = (btn, fn) => btn && btn.addEventListener('click', (e) => (e.preventDefault(), fn()));
    on(this.buttons.start, () => this.start());
    on(this.buttons.extend, () => this.extend());
    on(this.buttons.reset, () => this.reset());
    on(this.buttons.stop, () => this.stop());
    if (this.stepsEl) {
      this.stepsEl.addEventListener('click', (e) => {
        const b = e.target.closest('[data-action="check"]');
        if (b && this.stepsEl.contains(b)) {
          e.preventDefault();
          this.check(b.dataset.step, b);
        }
      });
    }
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this._following) this._poll();
    });
  }

  /** Make ```bash blocks in the steps clickable, with a "▶ Run" button shown on hover. */
  _decorateCode() {
    if (!this.stepsEl) return;
    const sel = RUNNABLE_LANGS.map((c) => `pre > code.${c}`).join(', ');
    for (const code of this.stepsEl.querySelectorAll(sel)) {
      const pre = code.parentElement;
      if (pre.classList.contains('runnable')) continue;
      pre.classList.add('runnable');
      pre.title = gettext('Click to run in the terminal');
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'run-code';
      btn.textContent = `▶ ${gettext('Run')}`;
      btn.setAttribute('aria-label', gettext('Run in the terminal'));
      const go = () => {
        if (this.run(code.textContent || '')) {
          pre.classList.remove('is-sent');
          void pre.offsetWidth; // restart the animation
          pre.classList.add('is-sent');
        }
      };
      btn.addEventListener('click', (e) => {
        e.stopPropagation();
        go();
      });
      pre.addEventListener('click', () => {
        // Let people select text to copy it without running it.
        const sel = window.getSelection && window.getSelection();
        if (sel && !sel.isCollapsed && pre.contains(sel.anchorNode)) return;
        go();
      });
      pre.append(btn);
    }
  }

  // ---------------------------------------------------------------- helpers

  async _action(fn) {
    if (this.busy) return;
    this.busy = true;
    this._messageIsError = false;
    this._render();
    try {
      await fn();
    } catch (err) {
      this._showMessage(err.message || String(err), 'error');
    } finally {
      this.busy = false;
      this._render();
    }
  }

  _active() {
    return this.terminals.find((t) => t.tab === this.activeTab) || null;
  }

  _sessionUrl(suffix) {
    const base = this.session.url || `/api/sessions/${encodeURIComponent(this.session.id)}/`;
    return base.replace(/\/?$/, '/') + suffix;
  }

  _disposeTerminals() {
    for (const t of this.terminals) {
      t.conn.dispose();
      t.pane.remove();
      t.button.remove();
    }
    this.terminals = [];
    this.activeTab = 0;
  }

  _clearCheckResults() {
    if (!this.stepsEl) return;
    for (const r of this.stepsEl.querySelectorAll('[data-role="check-result"]')) {
      r.replaceChildren();
      r.className = 'check-result';
    }
  }
}

// -------------------------------------------------------------------- helpers

function isActive(session) {
  return ACTIVE_STATES.includes(session.state);
}

function terminalPath(session, tab) {
  return `${session.terminal_url}${tab}/`;
}

function showButton(button, visible, disabled) {
  if (!button) return;
  button.hidden = !visible;
  button.disabled = !visible || !!disabled;
}

function csrfToken() {
  const fromCookie = readCookie(document.cookie, 'csrftoken');
  if (fromCookie) return fromCookie;
  const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
  return input ? input.value : '';
}

async function api(method, url) {
  const headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  const init = { method, credentials: 'same-origin', headers };
  if (method !== 'GET') {
    headers['X-CSRFToken'] = csrfToken();
    headers['Content-Type'] = 'application/json';
    init.body = '{}';
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw new ApiError(gettext('Could not reach the server. Check your connection and try again.'));
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = data && data.error;
    const code = (e && typeof e === 'object' && e.code) || '';
    const retryAfter = retryAfterMs(res.headers.get('Retry-After'), Date.now());
    throw new ApiError(apiErrorMessage(res.status, data), res.status, code, retryAfter);
  }
  return data;
}

function showCheckRunning(el) {
  el.className = 'check-result is-running';
  el.textContent = gettext('Checking…');
}

function showCheckResult(el, data) {
  const passed = !!(data && data.passed);
  el.className = `check-result ${passed ? 'is-passed' : 'is-failed'}`;
  const head = document.createElement('strong');
  if (passed) head.textContent = `✓ ${gettext('Step complete.')}`;
  else if (data && data.timed_out) head.textContent = gettext('The check timed out. Try again in a moment.');
  else head.textContent = gettext('Not done yet.');
  el.replaceChildren(head);
  const output = ((data && data.output) || '').replace(/\s+$/, '');
  if (output) {
    const pre = document.createElement('pre');
    pre.textContent = output;
    el.append(pre);
  }
}

/** A step that limits failed checks (a quiz) says how many are left; a pass ends the count. */
function showTriesLeft(section, data) {
  const el = section.querySelector('[data-role="tries-left"]');
  if (!el || !data) return;
  if (data.passed) {
    el.remove();
    return;
  }
  if (typeof data.attempts_left !== 'number') return;
  el.dataset.left = String(data.attempts_left);
  el.textContent = interpolate(gettext('Tries left: %(n)s'), { n: data.attempts_left });
}

function showCheckError(el, message, kind = 'is-error') {
  el.className = `check-result ${kind}`;
  el.textContent = message;
}

// ------------------------------------------------------------------- startup

/** The controller of this page (null on pages without #lab-app). */
export let controller = null;

export function init() {
  const root = document.getElementById('lab-app');
  if (root && !controller) controller = new LabController(root);
  return controller;
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init, { once: true });
  else init();
}
