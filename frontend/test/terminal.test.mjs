// TerminalConnection's close-code behaviour (src/terminal.js) without a browser: xterm.js and
// its fit addon are replaced by stand-ins through a module hook, and the DOM, WebSocket and
// timers by small fakes. What is checked: which codes reconnect by themselves (none of
// 4001, 4010, 4012), and what the banner then offers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';

import { CLOSE_CODES } from '../src/protocol.js';

const module = (source) => `data:text/javascript,${encodeURIComponent(source)}`;
const fakes = {
  '@xterm/xterm': module(`export class Terminal {
    constructor() { this.cols = 80; this.rows = 24; }
    loadAddon() {} attachCustomKeyEventHandler() {} open() {} reset() {} focus() {} dispose() {}
    onData() { return { dispose() {} }; }
    onBinary() { return { dispose() {} }; }
    onResize() { return { dispose() {} }; }
    onSelectionChange() { return { dispose() {} }; }
    write(data, done) { if (done) done(); }
  }`),
  '@xterm/addon-fit': module('export class FitAddon { fit() {} }'),
  '@xterm/addon-search': module(`export class SearchAddon {
    findNext() { return true; } findPrevious() { return true; } clearDecorations() {}
    get onDidChangeResults() { return () => ({ dispose() {} }); }
  }`),
  '@xterm/addon-web-links': module('export class WebLinksAddon {}'),
  '@xterm/addon-unicode11': module('export class Unicode11Addon {}'),
};
register(
  module(`const fakes = ${JSON.stringify(fakes)};
  export async function resolve(specifier, context, next) {
    return specifier in fakes ? { url: fakes[specifier], shortCircuit: true } : next(specifier, context);
  }`),
);

class FakeElement {
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.className = '';
    this.children = [];
    this.dataset = {};
    this.attributes = {};
    this.hidden = false;
    this.textContent = '';
    this.onclick = null;
    this.isConnected = false; // so fit() measures nothing
    this.clientWidth = 0;
    this.clientHeight = 0;
    const names = () => this.className.split(/\s+/).filter(Boolean);
    this.classList = {
      add: (...c) => (this.className = [...new Set([...names(), ...c])].join(' ')),
      remove: (...c) => (this.className = names().filter((n) => !c.includes(n)).join(' ')),
      contains: (c) => names().includes(c),
    };
  }
  append(...children) {
    this.children.push(...children);
  }
  addEventListener() {}
  remove() {}
  focus() {}
  select() {}
  replaceChildren(...children) {
    this.children = children;
  }
  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }
  removeAttribute(name) {
    delete this.attributes[name];
    if (name === 'href') delete this.href;
  }
}

class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static opened = [];
  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    this.sent = [];
    FakeWebSocket.opened.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close() {
    this.readyState = FakeWebSocket.CLOSED;
  }
  // what the server does
  accept() {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.({});
    this.onmessage({ data: JSON.stringify({ type: 'status', state: 'attached', tab: 1 }) });
  }
  serverClose(code) {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose({ code });
  }
}

const here = { href: 'https://lab.example.edu/labs/3/', pathname: '/labs/3/', search: '' };
globalThis.window = { location: here, addEventListener() {}, removeEventListener() {} };
globalThis.document = { createElement: (tag) => new FakeElement(tag) };
globalThis.ResizeObserver = class {
  observe() {}
  disconnect() {}
};
globalThis.WebSocket = FakeWebSocket;

const { TerminalConnection } = await import('../src/terminal.js');

/** A connected terminal, its socket, the closes it reported, and the fake clock. */
function attached(t) {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  FakeWebSocket.opened = [];
  const closed = [];
  const conn = new TerminalConnection(new FakeElement('div'), {
    url: '/ws/sessions/s1/terminals/1/',
    loginUrl: '/accounts/login/',
    onClosed: (policy) => closed.push(policy.reason),
  });
  t.after(() => conn.dispose());
  conn.connect();
  const ws = FakeWebSocket.opened[0];
  ws.accept();
  assert.equal(conn.state, 'attached');
  return { conn, ws, closed, clock: t.mock.timers };
}

/** The sockets opened while a long time passes: reconnects made by the page itself. */
function reconnectsWithin(clock, ms = 5 * 60_000) {
  const before = FakeWebSocket.opened.length;
  for (let i = 0; i < ms / 1000; i++) clock.tick(1000);
  return FakeWebSocket.opened.length - before;
}

test('4012 CONSOLE_TAKEN: no reconnect; "Take it back" reconnects once per click', (t) => {
  const { conn, ws, closed, clock } = attached(t);
  ws.serverClose(CLOSE_CODES.CONSOLE_TAKEN);
  assert.equal(conn.state, 'ended');
  assert.equal(conn.endReason, 'taken');
  assert.deepEqual(closed, ['taken']);
  assert.equal(conn.bannerText.textContent, 'This terminal is open in another window.');
  assert.equal(conn.bannerButton.hidden, false);
  assert.equal(conn.bannerButton.textContent, 'Take it back');
  assert.equal(conn.bannerLink.hidden, true);
  assert.equal(reconnectsWithin(clock), 0);

  conn.bannerButton.onclick();
  assert.equal(FakeWebSocket.opened.length, 2);
  const again = FakeWebSocket.opened[1];
  again.accept();
  assert.equal(conn.state, 'attached');
  assert.equal(conn.banner.hidden, true);

  again.serverClose(CLOSE_CODES.CONSOLE_TAKEN); // the other window took it back in turn
  assert.equal(conn.state, 'ended');
  assert.equal(reconnectsWithin(clock), 0);
});

test('4001 UNAUTHENTICATED: a Log in link, no reconnect loop', (t) => {
  const { conn, ws, closed, clock } = attached(t);
  ws.serverClose(CLOSE_CODES.UNAUTHENTICATED);
  assert.equal(conn.state, 'ended');
  assert.deepEqual(closed, ['unauthenticated']);
  assert.equal(conn.bannerText.textContent, 'Your login has expired. Please log in again.');
  assert.equal(conn.bannerLink.hidden, false);
  assert.equal(conn.bannerLink.textContent, 'Log in');
  assert.equal(conn.bannerLink.href, '/accounts/login/?next=%2Flabs%2F3%2F');
  assert.equal(conn.bannerButton.hidden, true);
  assert.equal(reconnectsWithin(clock), 0);
});

test('4010 SANDBOX_ENDED: stops, tells the page, then shows why the session ended', (t) => {
  const { conn, ws, closed, clock } = attached(t);
  ws.serverClose(CLOSE_CODES.SANDBOX_ENDED);
  assert.equal(conn.state, 'ended');
  assert.deepEqual(closed, ['ended']); // the lab page fetches the session on this
  assert.equal(conn.bannerText.textContent, 'The lab session has ended.');
  assert.equal(conn.bannerButton.hidden, true);
  assert.equal(reconnectsWithin(clock), 0);
  // What the lab page does once the session says why (messages.endMessage):
  conn.disconnect('This lab session has ended: the sandbox stopped. You can start the lab again.');
  assert.match(conn.bannerText.textContent, /the sandbox stopped/);
  assert.equal(reconnectsWithin(clock), 0);
});

test('a reset points an ended terminal at the new session, which reconnects it', (t) => {
  const { conn, ws } = attached(t);
  ws.serverClose(CLOSE_CODES.CONSOLE_TAKEN);
  conn.setUrl('/ws/sessions/s2/terminals/1/');
  assert.equal(conn.endReason, '');
  conn.reconnectNow();
  assert.equal(FakeWebSocket.opened.length, 2);
  assert.match(FakeWebSocket.opened[1].url, /\/ws\/sessions\/s2\/terminals\/1\//);
});

test('network trouble (1006) and 4011 do reconnect by themselves', (t) => {
  const { conn, ws, closed, clock } = attached(t);
  ws.serverClose(1006);
  assert.equal(conn.state, 'waiting');
  assert.equal(conn.bannerButton.textContent, 'Reconnect now');
  clock.tick(1000);
  assert.equal(FakeWebSocket.opened.length, 2);
  FakeWebSocket.opened[1].serverClose(CLOSE_CODES.ENGINE_ERROR);
  assert.equal(conn.state, 'waiting');
  assert.ok(reconnectsWithin(clock, 3000) >= 1);
  assert.deepEqual(closed, []);
});

test('every ack batch goes out at once: acks take no token', (t) => {
  const { conn, ws } = attached(t);
  ws.sent.length = 0;
  for (let i = 0; i < 100; i++) ws.onmessage({ data: new Uint8Array(16 * 1024).buffer });
  const acks = ws.sent.map((m) => JSON.parse(m)).filter((m) => m.type === 'ack');
  assert.equal(acks.length, 100);
  assert.equal(acks.reduce((n, m) => n + m.bytes, 0), 100 * 16 * 1024);
  assert.equal(conn.state, 'attached');
});

test('paste, copy and find keys go to the browser, other Ctrl keys to the shell', async () => {
  const { browserKey } = await import('../src/terminal.js');
  const key = (k, extra = {}) => ({ type: 'keydown', key: k, ctrlKey: true, ...extra });
  assert.equal(browserKey(key('v')), 'paste');
  assert.equal(browserKey(key('V', { shiftKey: true })), 'paste');
  assert.equal(browserKey(key('C', { shiftKey: true })), 'copy');
  assert.equal(browserKey(key('F', { shiftKey: true })), 'find');
  assert.equal(browserKey(key('c')), ''); // Ctrl+C stays an interrupt
  assert.equal(browserKey(key('f')), '');
  assert.equal(browserKey({ type: 'keyup', key: 'v', ctrlKey: true }), '');
});

test('the terminal keeps 10,000 lines and leaves room for underscores', async () => {
  const { TERMINAL_OPTIONS } = await import('../src/terminal.js');
  assert.ok(TERMINAL_OPTIONS.scrollback >= 10_000);
  assert.ok(TERMINAL_OPTIONS.lineHeight >= 1.15);
  assert.match(TERMINAL_OPTIONS.fontFamily, /DejaVu Sans Mono.*Noto Sans Mono CJK SC/);
});
