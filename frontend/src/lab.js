/*
 * Lab page controller (entry point of dist/lab.js; global `LabSite`): the view of a session.
 * The session itself and its following (events socket, a poll only while that is down) are
 * session.js's; the phone's tabs and the full-window terminal are lab-view.js's.
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
 *              data-max-tabs="4"                 (optional; LABSITE_MAX_TABS, at most 4)
 *              data-running-url="/labs/running/" data-running-label="…"   (optional; linked
 *                                                from the "too many labs running" message)
 *       >
 *       <div class="lab-toolbar">
 *         <span class="lab-state" data-role="state"></span>
 *         <span class="lab-timer" data-role="time-left"></span>
 *         <span class="spacer"></span>                                          (optional)
 *         <button class="btn btn-primary" data-action="start">…</button>
 *         <button class="btn" data-action="extend">…</button>
 *         <button class="btn" data-action="fullscreen" aria-pressed="false">…</button>  (optional; lab-view.js)
 *         <button class="btn" data-action="reset">…</button>
 *         <button class="btn btn-danger" data-action="stop">…</button>
 *       </div>
 *       <div class="lab-progress" data-role="progress" hidden><div class="bar"></div><span class="msg"></span></div>
 *       <div class="lab-watchers" data-role="watchers" hidden></div>            (optional; made if missing)
 *       <div class="lab-message" data-role="message" hidden></div>
 *       <span id="reason-not-running">…</span> <span id="reason-no-extensions">…</span>
 *                                  (optional; why Check / Extend are disabled: title + aria-describedby)
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

import { FINAL_STATES, MAX_TABS, SessionState } from './protocol.js';
import { commandLines, formatDuration, parseSessionAttr, timerLevel } from './flow.js';
import { gettext, interpolate } from './i18n.js';
import { endMessage } from './messages.js';
import { TerminalConnection } from './terminal.js';
import { LabView } from './lab-view.js';
import { request } from './http.js';
import { isActive, SessionSync } from './session.js';
import { WatchersNotice } from './watchers.js';

export { TerminalConnection };

const LINE_DELAY_MS = 40;
// ```bash blocks: <pre><code class="language-bash">, plain or inside Pygments'
// <div class="codehilite"> (with a formatter that keeps the language class).
const RUNNABLE_LANGS = ['language-bash', 'language-sh', 'language-shell'];

export class LabController {
  /** @param {HTMLElement} root the #lab-app element */
  constructor(root) {
    this.root = root;
    this.startUrl = root.dataset.startUrl;
    this.loggedIn = root.dataset.loggedIn !== 'false';
    this.loginUrl = root.dataset.loginUrl || '/accounts/login/';
    this.maxTabs = Math.min(MAX_TABS, Number(root.dataset.maxTabs) || MAX_TABS);
    this.runningUrl = root.dataset.runningUrl || '';
    const initial = parseSessionAttr(root.dataset.session || '');
    // The session and its following (events socket; a poll only while it is down).
    this.sync = new SessionSync({
      onChange: (session, previous) => this._changed(session, previous),
      onProgress: (progress) => {
        this.progress = progress;
        this._renderProgress();
      },
      onWatchers: (list, reply) => {
        if (list) this.watchers.update(list, reply);
        else this.watchers.clear();
      },
      onGone: (message) => this._showMessage(message, 'error'),
    });

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

    this._expiredRefreshed = false;

    this.view = new LabView(root, { onLayout: () => this._refit() });
    if (isActive(initial)) this.view.show('terminal', { quiet: true });

    this._buildTabsBar();
    this._bind();
    this._decorateCode();
    setInterval(() => this._tick(), 1000);

    if (initial) this.sync.follow(initial);
    else this._render();
  }

  /** The session shown (null before the first start). */
  get session() {
    return this.sync.session;
  }

  // ---------------------------------------------------------------- actions

  async start() {
    await this._action(async () => {
      const session = await request('POST', this.startUrl);
      this._disposeTerminals();
      this._clearCheckResults();
      this.sync.follow(session);
    });
  }

  async extend() {
    await this._action(async () => {
      const data = await this.sync.call('POST', 'extend/');
      if (data && data.id) this.sync.update(data);
      else await this.sync.refresh();
    });
  }

  async reset() {
    if (!window.confirm(gettext('Reset the lab? The sandbox will be replaced by a fresh one and your changes in it will be lost.'))) return;
    await this._action(async () => {
      const session = await this.sync.call('POST', 'reset/');
      // Keep the open tabs: point each at the new session; they reconnect once it runs.
      for (const t of this.terminals) t.conn.setUrl(terminalPath(session, t.tab));
      this._clearCheckResults();
      this.sync.follow(session);
    });
  }

  async stop() {
    if (!window.confirm(gettext('Stop the lab? The sandbox and everything in it will be deleted.'))) return;
    await this._action(async () => {
      const data = await this.sync.call('POST', 'stop/');
      if (data && data.id) this.sync.update(data);
      else await this.sync.refresh();
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
      const data = await this.sync.call('POST', `steps/${encodeURIComponent(step)}/check/`);
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
      if (err.code === 'sandbox_ended') this.sync.refresh();
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
    this.view.showTerminal();
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
      // The session's state comes from the events socket, not from the terminal's status.
      onClosed: (policy) => this._terminalClosed(policy, conn),
    });
    const entry = { tab: n, conn, pane, button };
    this.terminals.push(entry);
    this.terminals.sort((a, b) => a.tab - b.tab);
    conn.connect();
    this.view.showTerminal();
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
      if (s && FINAL_STATES.includes(s.state)) conn.disconnect();
      else this.sync.refresh();
    } else if (policy.reason === 'unauthenticated') {
      this.sync.refresh(); // answers 401: the page stops following and says so
    }
  }

  // ------------------------------------------------------- session changes

  /** A copy of the session was adopted (API answer, events socket, fallback poll). */
  _changed(session, prevState) {
    this._expiredRefreshed = false;
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
      // Said once, above the terminals (the page message), not again in each of them.
      for (const t of this.terminals) t.conn.disconnect();
    }
    this._render();
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
    explainDisabled(this.buttons.extend, running && !(s && s.can_extend) ? 'reason-no-extensions' : '');
    this.view.setAvailable(running && this.terminals.length > 0);
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
      explainDisabled(b, running ? '' : 'reason-not-running');
      b.classList.toggle('is-busy', checking);
      b.setAttribute('aria-busy', checking ? 'true' : 'false');
    }
  }

  _tick() {
    this._renderTimer();
    const s = this.session;
    if (s && s.state === SessionState.RUNNING && this.deadline && Date.now() >= this.deadline && !this._expiredRefreshed) {
      // Time is up by the page's clock: one look, in case the server's word went missing.
      this._expiredRefreshed = true;
      this.sync.refresh();
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

  /** `link`: optional {href, label}, shown after the text. */
  _showMessage(text, kind, link = null) {
    if (!this.messageEl) return;
    clearTimeout(this._flashTimer);
    this._messageIsError = kind === 'error';
    this.messageEl.hidden = !text;
    this.messageEl.textContent = text || '';
    if (link && text) {
      const a = document.createElement('a');
      a.href = link.href;
      a.textContent = link.label;
      a.className = 'lab-message-link';
      this.messageEl.append(' ', a);
    }
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
      const link =
        err.code === 'too_many_sessions' && this.runningUrl
          ? { href: this.runningUrl, label: this.root.dataset.runningLabel || this.runningUrl }
          : null;
      this._showMessage(err.message || String(err), 'error', link);
    } finally {
      this.busy = false;
      this._render();
    }
  }

  _active() {
    return this.terminals.find((t) => t.tab === this.activeTab) || null;
  }

  /** The layout changed (phone tab, full window): fit the visible terminal to its space. */
  _refit() {
    const t = this._active();
    if (t) t.conn.fit();
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

function terminalPath(session, tab) {
  return `${session.terminal_url}${tab}/`;
}

/**
 * Say why a disabled button cannot be used: its title (hover) and aria-describedby (screen
 * readers) point at the reason element `reasonId` (in the template, translated there).
 */
function explainDisabled(button, reasonId) {
  if (!button) return;
  const reason = reasonId ? document.getElementById(reasonId) : null;
  if (reason && button.disabled) {
    button.title = reason.textContent.trim();
    button.setAttribute('aria-describedby', reasonId);
  } else {
    button.removeAttribute('title');
    button.removeAttribute('aria-describedby');
  }
}

function showButton(button, visible, disabled) {
  if (!button) return;
  button.hidden = !visible;
  button.disabled = !visible || !!disabled;
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
