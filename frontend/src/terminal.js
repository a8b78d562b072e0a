// One browser terminal: an xterm.js Terminal attached to one WebSocket
// (docs/terminal-protocol.md). Output bytes go to term.write() untouched; keystrokes go
// out as binary frames; flow control acknowledges what xterm.js has finished writing.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';

import { MessageType, STATUS_ATTACHED } from './protocol.js';
import {
  AckBatcher,
  Backoff,
  ControlQueue,
  InputThrottle,
  binaryStringToBytes,
  buildWsUrl,
  clampSize,
  closePolicy,
} from './flow.js';
import { gettext, interpolate } from './i18n.js';
import { closedNotice, reasonText } from './messages.js';
import { TerminalSearchBar } from './terminal-search.js';

const CONNECT_TIMEOUT_MS = 15_000;
const RESIZE_DEBOUNCE_MS = 100;
// A selection still being dragged changes every few ms; copy once it has settled.
const COPY_SETTLE_MS = 250;
// Lines xterm.js keeps above the screen; a reconnect replays as many (tmux history-limit).
export const SCROLLBACK_LINES = 10_000;

export const THEME = {
  background: '#0d1117',
  foreground: '#e6edf3',
  cursor: '#58a6ff',
  cursorAccent: '#0d1117',
  selectionBackground: 'rgba(56, 139, 253, 0.40)',
  black: '#484f58',
  red: '#ff7b72',
  green: '#3fb950',
  yellow: '#d29922',
  blue: '#58a6ff',
  magenta: '#bc8cff',
  cyan: '#39c5cf',
  white: '#b1bac4',
  brightBlack: '#6e7681',
  brightRed: '#ffa198',
  brightGreen: '#56d364',
  brightYellow: '#e3b341',
  brightBlue: '#79c0ff',
  brightMagenta: '#d2a8ff',
  brightCyan: '#56d4dd',
  brightWhite: '#f0f6fc',
};

// Monospace first, then CJK fonts whose wide glyphs fill two cells (Debian: fonts-noto-cjk,
// fonts-wqy-zenhei; macOS and Windows: PingFang, YaHei).
export const FONT_FAMILY =
  '"JetBrains Mono", "Cascadia Mono", "Fira Code", "DejaVu Sans Mono", "Ubuntu Mono", Menlo, Consolas, ' +
  '"Noto Sans Mono CJK SC", "WenQuanYi Zen Hei Mono", "Noto Sans CJK SC", "PingFang SC", ' +
  '"Microsoft YaHei", monospace';

// A line height above 1 leaves room below the baseline: at 14 px and 1.0 (16 px rows) the
// underscore falls outside the cell at device pixel ratio 1 ("x86_64" read "x86 64").
export const TERMINAL_OPTIONS = {
  cursorBlink: true,
  fontFamily: FONT_FAMILY,
  fontSize: 14,
  lineHeight: 1.2,
  scrollback: SCROLLBACK_LINES,
  allowProposedApi: true, // the unicode11 add-on sets term.unicode.activeVersion
  theme: THEME,
};

/**
 * Keys the browser handles rather than the shell: Ctrl+V / Ctrl+Shift+V paste (through
 * the paste event, bracketed when the program asked), Ctrl+Shift+C copies the selection,
 * Ctrl+Shift+F searches. Returns 'paste', 'copy', 'find' or '' (a plain key).
 */
export function browserKey(ev) {
  if (ev.type !== 'keydown' || !ev.ctrlKey || ev.altKey || ev.metaKey) return '';
  const key = (ev.key || '').toLowerCase();
  if (key === 'v') return 'paste';
  if (ev.shiftKey && key === 'c') return 'copy';
  if (ev.shiftKey && key === 'f') return 'find';
  return '';
}

/**
 * Connection states reported through `onState(state, conn)`:
 *   idle        not connected and not trying (before connect(), after setUrl())
 *   connecting  socket opening, or open and replaying recent output
 *   attached    the shell is attached
 *   waiting     closed; a reconnect is scheduled
 *   ended       closed for good (see the banner for why; `endReason` is closePolicy's
 *               reason, e.g. "taken", or "" after disconnect())
 */
export class TerminalConnection {
  /**
   * @param {HTMLElement} container  element to mount into (should be sized by CSS)
   * @param {object} opts
   * @param {string} opts.url        terminal path, e.g. session.terminal_url + "1/"
   * @param {(state: string, conn: TerminalConnection) => void} [opts.onState]
   * @param {(msg: object, conn: TerminalConnection) => void} [opts.onStatusMessage]
   * @param {(policy: object, conn: TerminalConnection) => void} [opts.onClosed]
   *        the socket closed with a code that does not reconnect (policy of closePolicy())
   * @param {string} [opts.loginUrl]  where the "Log in" link of a 4001 goes
   */
  constructor(container, { url, onState, onStatusMessage, onClosed, loginUrl } = {}) {
    this.container = container;
    this.url = url;
    this.onState = onState || (() => {});
    this.onStatusMessage = onStatusMessage || (() => {});
    this.onClosed = onClosed || (() => {});
    this.loginUrl = loginUrl || '';
    this.state = 'idle';
    this.endReason = '';

    this._ws = null;
    this._gen = 0; // bumped for every socket; events of older sockets are ignored
    this._hadOutput = false; // a socket of this terminal has received something
    this._sentSize = null;
    this._acks = new AckBatcher();
    this._backoff = new Backoff();
    this._throttle = new InputThrottle({ now: now() });
    this._control = new ControlQueue({ now: now() });
    this._encoder = new TextEncoder();
    this._timers = { reconnect: 0, countdown: 0, connect: 0, input: 0, control: 0, resize: 0, flash: 0, copy: 0 };
    this._endMessage = '';

    container.classList.add('terminal-pane');
    this.host = el('div', 'terminal-host');
    this.banner = el('div', 'terminal-banner');
    this.banner.hidden = true;
    this.banner.setAttribute('role', 'status');
    this.bannerText = el('span', 'terminal-banner-text');
    this.bannerButton = el('button', 'btn btn-ghost terminal-banner-button');
    this.bannerButton.type = 'button';
    this.bannerButton.hidden = true;
    this.bannerLink = el('a', 'btn btn-ghost terminal-banner-button');
    this.bannerLink.hidden = true;
    this.banner.append(this.bannerText, this.bannerButton, this.bannerLink);
    container.append(this.host, this.banner);

    this.term = new Terminal(TERMINAL_OPTIONS);
    this.fitAddon = new FitAddon();
    this.searchAddon = new SearchAddon();
    this.term.loadAddon(this.fitAddon);
    this.term.loadAddon(this.searchAddon);
    this.term.loadAddon(new WebLinksAddon());
    this.term.loadAddon(new Unicode11Addon());
    if (this.term.unicode) this.term.unicode.activeVersion = '11'; // CJK and emoji are 2 cells
    this.term.attachCustomKeyEventHandler((ev) => this._browserKey(ev));
    this.term.open(this.host);
    this.search = new TerminalSearchBar(container, this.searchAddon, () => this.focus());
    container.terminalConnection = this; // for the page's tests and the browser console

    this._disposables = [
      this.term.onData((s) => this._input(this._encoder.encode(s))),
      this.term.onBinary((s) => this._input(binaryStringToBytes(s))),
      this.term.onResize(() => this._sendResize()),
      this.term.onSelectionChange(() => this._copySelectionSoon()),
    ];

    this._resizeObserver = new ResizeObserver(() => {
      clearTimeout(this._timers.resize);
      this._timers.resize = setTimeout(() => this.fit(), RESIZE_DEBOUNCE_MS);
    });
    this._resizeObserver.observe(container);

    this._onOnline = () => {
      if (this.state === 'waiting') this.connect();
    };
    window.addEventListener('online', this._onOnline);

    if (document.fonts && document.fonts.ready) {
      document.fonts.ready.then(() => this.fit()).catch(() => {});
    }
    this.fit();
  }

  /** True if keystrokes can be sent now. */
  get connected() {
    return !!this._ws && this._ws.readyState === WebSocket.OPEN;
  }

  /** Open the socket now (cancelling any scheduled reconnect). */
  connect() {
    this._closeSocket();
    this._clearTimer('reconnect');
    this._clearTimer('countdown');
    this._forgetEnd();
    this.fit();
    const gen = ++this._gen;
    const size = clampSize(this.term.cols, this.term.rows) || { cols: 80, rows: 24 };
    let ws;
    try {
      ws = new WebSocket(buildWsUrl(this.url, window.location, size));
    } catch {
      this._scheduleReconnect(closePolicy(1006));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    this._sentSize = size;
    this._acks.reset();
    // The server keeps a fresh input bucket per connection; so do we.
    this._throttle = new InputThrottle({ now: now() });
    this._control = new ControlQueue({ now: now() });
    this._setState('connecting');
    this._showBanner(gettext('Connecting…'), 'info');

    this._timers.connect = setTimeout(() => {
      if (gen === this._gen && ws.readyState === WebSocket.CONNECTING) ws.close();
    }, CONNECT_TIMEOUT_MS);

    let first = true;
    ws.onopen = () => {
      if (gen === this._gen) this._clearTimer('connect');
    };
    ws.onmessage = (ev) => {
      if (gen !== this._gen) return;
      if (first) {
        first = false;
        if (this._hadOutput) {
          // Same Terminal, new socket: the server replays recent output first, so clear
          // the screen just before it, ordered after any output still queued in xterm.js.
          // (Done on the first message rather than on open, so that a socket refused
          // right after the handshake does not wipe what the student was looking at.)
          this.term.write('', () => {
            if (gen === this._gen) this.term.reset();
          });
        }
        this._hadOutput = true;
      }
      if (typeof ev.data === 'string') this._onControl(ev.data);
      else this._onOutput(new Uint8Array(ev.data), gen);
    };
    ws.onclose = (ev) => {
      if (gen !== this._gen) return;
      this._clearTimer('connect');
      this._ws = null;
      const policy = closePolicy(ev.code);
      if (policy.reconnect) {
        this._scheduleReconnect(policy);
      } else {
        this._end(policy.reason);
        this.onClosed(policy, this);
      }
    };
    // onerror is always followed by onclose.
  }

  /** Reconnect now if a reconnect is pending (e.g. the session became running). */
  reconnectNow() {
    if (this.state === 'waiting' || this.state === 'idle') this.connect();
  }

  /** Point at another terminal URL (a reset made a new session); does not connect. */
  setUrl(url) {
    this.url = url;
    this._forgetEnd();
    this._gen++;
    this._closeSocket();
    this._clearTimer('reconnect');
    this._clearTimer('countdown');
    this._backoff.reset();
    this._setState('idle');
    this._showBanner(gettext('Waiting for the lab to start…'), 'info');
  }

  /** Close for good, showing `message` (e.g. the session was stopped). */
  disconnect(message) {
    this._gen++;
    this._closeSocket();
    this._clearTimer('reconnect');
    this._clearTimer('countdown');
    this._forgetEnd();
    this._setState('ended');
    if (message) this._showBanner(message, 'info');
  }

  /** Type `text` into the shell as keystrokes. Returns false if not connected. */
  sendText(text) {
    if (!this.connected) return false;
    this._input(this._encoder.encode(text));
    return true;
  }

  /** Fit the terminal to its container (no-op while hidden) and send the new size. */
  fit() {
    if (!this.host.isConnected || this.host.clientWidth === 0 || this.host.clientHeight === 0) return;
    try {
      this.fitAddon.fit();
    } catch {
      // not rendered yet
    }
    this._sendResize();
  }

  focus() {
    this.term.focus();
  }

  /** Open the find bar, starting from the selected text if there is one. */
  openSearch() {
    this.search.open(this.term.getSelection());
  }

  /**
   * Copy on selection, as terminals on Linux do: once the mouse has settled, the selected
   * text goes to the clipboard (where the page may use it: HTTPS or localhost).
   */
  _copySelectionSoon() {
    this._clearTimer('copy');
    if (!this.term.hasSelection() || !navigator.clipboard) return;
    this._timers.copy = setTimeout(() => {
      this._timers.copy = 0;
      const text = this.term.getSelection();
      if (text) navigator.clipboard.writeText(text).catch(() => {});
    }, COPY_SETTLE_MS);
  }

  /** False: the browser (not xterm.js) handles the key (see browserKey). */
  _browserKey(ev) {
    const action = browserKey(ev);
    if (action === 'paste') return false; // the paste event reaches xterm.js's textarea
    if (action === 'copy') {
      if (ev.type === 'keydown' && this.term.hasSelection() && navigator.clipboard) {
        navigator.clipboard.writeText(this.term.getSelection()).catch(() => {});
      }
      ev.preventDefault();
      return false;
    }
    if (action === 'find') {
      ev.preventDefault();
      if (ev.type === 'keydown') this.openSearch();
      return false;
    }
    return true;
  }

  dispose() {
    this._gen++;
    this._closeSocket();
    for (const k of Object.keys(this._timers)) this._clearTimer(k);
    this._resizeObserver.disconnect();
    window.removeEventListener('online', this._onOnline);
    for (const d of this._disposables) d.dispose();
    this.search.dispose();
    this.term.dispose();
    this.container.replaceChildren();
    this.state = 'disposed';
  }

  // -------------------------------------------------------------------------

  _onOutput(bytes, gen) {
    const n = bytes.length;
    if (!n) return;
    this._acks.received(n);
    this.term.write(bytes, () => {
      if (gen !== this._gen) return;
      const ack = this._acks.written(n);
      if (ack) {
        this._control.ack(ack);
        this._flushControl();
      }
    });
  }

  _onControl(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || msg.type !== MessageType.STATUS) return;
    if (msg.state === STATUS_ATTACHED) {
      this._backoff.reset();
      this._hideBanner();
      this._setState('attached');
      this._sendResize();
    } else {
      // The session left the running state; the socket closes with 4010 right after.
      this._endMessage = msg.message || '';
    }
    this.onStatusMessage(msg, this);
  }

  _scheduleReconnect(policy) {
    this._setState('waiting');
    const delay = this._backoff.next(Math.random(), policy.minDelay);
    const due = now() + delay;
    const reason = reasonText(policy.reason);
    const update = () => {
      const secs = Math.max(1, Math.ceil((due - now()) / 1000));
      this._showBanner(
        `${reason} ${interpolate(gettext('Reconnecting in %(seconds)s s…'), { seconds: secs })}`,
        'warning',
        { label: gettext('Reconnect now'), onClick: () => this.connect() },
      );
    };
    update();
    this._clearTimer('countdown');
    this._timers.countdown = setInterval(update, 1000);
    this._timers.reconnect = setTimeout(() => {
      this._clearTimer('countdown');
      this.connect();
    }, delay);
  }

  /** Closed for good: no timer is left that would reconnect (docs/terminal-protocol.md). */
  _end(reason) {
    this._clearTimer('reconnect');
    this._clearTimer('countdown');
    this.endReason = reason;
    this.container.dataset.endReason = reason;
    this._setState('ended');
    const notice = closedNotice(reason, {
      endText: this._endMessage,
      loginUrl: this.loginUrl,
      location: window.location,
    });
    let action = notice.action;
    if (action && action.run === 'reconnect') {
      // One attempt per click; if the other window takes the console again, we end here again.
      action = { label: action.label, onClick: () => this.connect() };
    }
    this._showBanner(notice.text, notice.kind, action);
  }

  _forgetEnd() {
    this.endReason = '';
    this._endMessage = '';
    delete this.container.dataset.endReason;
  }

  _input(bytes) {
    if (!this.connected) return;
    if (!this._throttle.push(bytes)) {
      this._flash(gettext('That paste is too large to send.'));
      return;
    }
    this._flushInput();
  }

  _flushInput() {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      this._throttle.clear();
      return;
    }
    for (const frame of this._throttle.take(now())) ws.send(frame);
    const delay = this._throttle.delay(now());
    if (delay !== null && !this._timers.input) {
      this._timers.input = setTimeout(() => {
        this._timers.input = 0;
        this._flushInput();
      }, delay);
    }
  }

  _sendResize() {
    const size = clampSize(this.term.cols, this.term.rows);
    if (!size || !this.connected) return;
    if (this._sentSize && this._sentSize.cols === size.cols && this._sentSize.rows === size.rows) return;
    this._sentSize = size;
    this._control.resize(size.cols, size.rows);
    this._flushControl();
  }

  /** Send the acks and resizes the control budget allows now; retry for the rest. */
  _flushControl() {
    if (!this.connected) return;
    for (const msg of this._control.take(now())) this._ws.send(JSON.stringify(msg));
    const delay = this._control.delay(now());
    if (delay !== null && !this._timers.control) {
      this._timers.control = setTimeout(() => {
        this._timers.control = 0;
        this._flushControl();
      }, delay);
    }
  }

  _closeSocket() {
    const ws = this._ws;
    this._ws = null;
    this._clearTimer('connect');
    this._clearTimer('input');
    this._clearTimer('control');
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.container.dataset.state = state;
    this.onState(state, this);
  }

  /** `action`: none, a button {label, onClick}, or a link {label, href}. */
  _showBanner(text, kind, action = null) {
    this._clearTimer('flash');
    this.banner.hidden = false;
    this.banner.className = `terminal-banner terminal-banner-${kind}`;
    this.bannerText.textContent = text;
    const button = action && action.onClick ? action : null;
    const link = action && action.href ? action : null;
    this.bannerButton.hidden = !button;
    this.bannerButton.textContent = button ? button.label : '';
    this.bannerButton.onclick = button
      ? () => {
          button.onClick();
          this.focus();
        }
      : null;
    this.bannerLink.hidden = !link;
    this.bannerLink.textContent = link ? link.label : '';
    if (link) this.bannerLink.href = link.href;
    else this.bannerLink.removeAttribute('href');
  }

  _hideBanner() {
    this.banner.hidden = true;
  }

  /** A short-lived notice that does not replace a connection banner. */
  _flash(text) {
    if (!this.banner.hidden) return;
    this._showBanner(text, 'warning');
    this._timers.flash = setTimeout(() => this._hideBanner(), 4000);
  }

  _clearTimer(name) {
    const t = this._timers[name];
    if (t) {
      clearTimeout(t);
      clearInterval(t);
      this._timers[name] = 0;
    }
  }
}

function el(tag, className) {
  const e = document.createElement(tag);
  e.className = className;
  return e;
}

function now() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
