// The instructor's watch page: one read-only xterm.js showing a student's terminal as the
// student sees it (docs/terminal-protocol.md, "Watching with consent"). Keys leave the page
// only while the student allows typing; the server checks again.
//
// DOM contract (templates/teaching/watch.html): #watch[data-url] holding
// [data-role=screen], [data-role=status], [data-role=ask] and optionally [data-role=tab].

import { Terminal } from '@xterm/xterm';

import { FONT_FAMILY, THEME } from './terminal.js';
import { MessageType, CLOSE_CODES } from './protocol.js';
import { Backoff, buildWsUrl } from './flow.js';
import { gettext } from './i18n.js';

const FINAL = new Set([
  CLOSE_CODES.UNAUTHENTICATED,
  CLOSE_CODES.FORBIDDEN,
  CLOSE_CODES.NOT_FOUND,
  CLOSE_CODES.NOT_RUNNING,
  CLOSE_CODES.SANDBOX_ENDED,
]);

export class WatchPage {
  constructor(root) {
    this.root = root;
    this.baseUrl = root.dataset.url;
    this.status = root.querySelector('[data-role=status]');
    this.ask = root.querySelector('[data-role=ask]');
    this.tabSelect = root.querySelector('[data-role=tab]');
    this.typing = false;
    this.backoff = new Backoff();
    this.encoder = new TextEncoder();
    this.term = new Terminal({
      fontFamily: FONT_FAMILY,
      fontSize: 14,
      scrollback: 5000,
      theme: THEME,
      cursorBlink: false,
      disableStdin: true,
    });
    this.term.open(root.querySelector('[data-role=screen]'));
    this.term.onData((s) => {
      if (this.typing && this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(this.encoder.encode(s));
      }
    });
    this.ask.addEventListener('click', () => this.askToType());
    if (this.tabSelect) this.tabSelect.addEventListener('change', () => this.connect());
    this.connect();
  }

  tab() {
    return this.tabSelect ? this.tabSelect.value : '1';
  }

  connect() {
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000);
    }
    this.term.reset();
    this.setStatus(gettext('Connecting…'));
    const ws = new WebSocket(buildWsUrl(`${this.baseUrl}${this.tab()}/`, window.location));
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') {
        this.term.write(new Uint8Array(ev.data));
        return;
      }
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onMessage(msg);
    };
    ws.onopen = () => this.backoff.reset();
    ws.onclose = (ev) => this.onClose(ev.code);
  }

  onMessage(msg) {
    if (msg.type === MessageType.WATCH_SCREEN) {
      if (!msg.resize) this.term.reset();
      this.term.resize(Math.max(2, msg.cols), Math.max(1, msg.rows));
      this.showState();
    } else if (msg.type === MessageType.WATCH_AWAY) {
      this.setStatus(gettext("The student's terminal is closed; you will see it when they open it."));
    } else if (msg.type === MessageType.WATCH_STATE) {
      this.typing = !!msg.typing;
      this.asking = !!msg.asking;
      this.term.options.disableStdin = !this.typing;
      this.term.options.cursorBlink = this.typing;
      if (this.typing) this.term.focus();
      this.showState();
    }
  }

  showState() {
    this.ask.hidden = this.typing;
    this.ask.disabled = this.asking;
    this.ask.title = this.asking ? gettext('Waiting for the student to answer') : '';
    if (this.typing) this.setStatus(gettext('The student lets you type. They can take it back at any moment.'));
    else if (this.asking) this.setStatus(gettext('Asked the student to let you type…'));
    else this.setStatus(gettext('Watching (read-only).'));
    this.root.dataset.typing = this.typing ? 'yes' : 'no';
  }

  askToType() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: MessageType.ASK_TO_TYPE }));
    }
  }

  onClose(code) {
    this.typing = false;
    this.ask.hidden = true;
    if (code === CLOSE_CODES.SANDBOX_ENDED || code === CLOSE_CODES.NOT_RUNNING) {
      this.setStatus(gettext("The student's lab is not running any more."));
    } else if (code === CLOSE_CODES.FORBIDDEN || code === CLOSE_CODES.NOT_FOUND) {
      this.setStatus(gettext('You may not watch this terminal.'));
    } else if (code === CLOSE_CODES.UNAUTHENTICATED) {
      this.setStatus(gettext('Your login has ended. Log in again to watch.'));
    }
    if (FINAL.has(code)) return;
    this.setStatus(gettext('Connection lost; reconnecting…'));
    setTimeout(() => this.connect(), this.backoff.next(Math.random(), 1000));
  }

  setStatus(text) {
    this.status.textContent = text;
  }
}

const root = document.getElementById('watch');
if (root) window.labWatch = new WatchPage(root);
