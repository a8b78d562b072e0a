// A lab session as the page knows it, and the one way the page follows it: the session's
// events socket (docs/terminal-protocol.md, "events"). The server sends the session when
// the socket opens and again at every change, its start progress and who watches it.
// While the socket is down (reconnecting with backoff) a poll every POLL_MS stands in;
// it stops as soon as the socket is back. No DOM here: lab.js renders what it is told.
//
//   const sync = new SessionSync({ onChange, onProgress, onWatchers, onGone });
//   sync.follow(sessionJson)      adopt a session (page load, Start, Reset) and follow it
//   sync.update(sessionJson)      a fresher copy (an API answer); a stale id is ignored
//   sync.refresh()                one GET now (the page knows something changed)
//   await sync.call('POST', 'extend/')   an API call on this session
//
// onChange(session, previousState) runs for every copy adopted; previousState is null for
// a different session than the last one. onGone(message) runs when the server says the
// session is not ours to see any more (401/403/404): following stops.

import { ACTIVE_STATES, MessageType } from './protocol.js';
import { Backoff, buildWsUrl, closePolicy } from './flow.js';
import { request } from './http.js';

export const POLL_MS = 5_000;

export function isActive(session) {
  return !!session && ACTIVE_STATES.includes(session.state);
}

export class SessionSync {
  constructor({ onChange = () => {}, onProgress = () => {}, onWatchers = () => {}, onGone = () => {} } = {}) {
    this.session = null;
    this.onChange = onChange;
    this.onProgress = onProgress;
    this.onWatchers = onWatchers;
    this.onGone = onGone;
    this._following = null; // id of the session followed
    this._ws = null;
    this._gen = 0;
    this._backoff = new Backoff();
    this._reconnectTimer = 0;
    this._pollTimer = 0;
    this._refreshing = null;
  }

  /** True while the events socket is open (no poll then). */
  get live() {
    return !!this._ws && this._ws.readyState === WebSocket.OPEN;
  }

  follow(session) {
    this._adopt(session, true);
  }

  update(session) {
    this._adopt(session, false);
  }

  /** One GET of the session now; calls made while one is under way share it. */
  refresh() {
    if (!this.session) return Promise.resolve();
    if (!this._refreshing) {
      this._refreshing = this._get().finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  /** An API call on this session: `suffix` after its URL ('' for the session itself). */
  call(method, suffix = '') {
    return request(method, this.url(suffix));
  }

  url(suffix = '') {
    const s = this.session;
    const base = s.url || `/api/sessions/${encodeURIComponent(s.id)}/`;
    return base.replace(/\/?$/, '/') + suffix;
  }

  /** Stop following (the session ended, or the page goes away). */
  stop() {
    this._following = null;
    this._closeSocket();
    clearTimeout(this._pollTimer);
    this._pollTimer = 0;
  }

  // ----------------------------------------------------------------- inner

  _adopt(session, force) {
    if (!session || !session.id) return;
    if (!force && this.session && session.id !== this.session.id) return; // stale (before a reset)
    const previous = this.session && this.session.id === session.id ? this.session.state : null;
    this.session = session;
    this.onChange(session, previous);
    if (!isActive(session)) {
      if (this._following === session.id || force) this.stop();
      return;
    }
    if (this._following !== session.id) {
      this.stop();
      this._following = session.id;
      this._openSocket();
    }
  }

  async _get() {
    const session = this.session;
    try {
      this.update(await request('GET', this.url('')));
    } catch (err) {
      if ((err.status === 404 || err.status === 401 || err.status === 403) && this.session && this.session.id === session.id) {
        this.stop();
        this.onGone(err.message);
      }
      // network trouble: the socket (or the fallback poll) tries again
    }
  }

  _openSocket() {
    const session = this.session;
    this._closeSocket();
    if (!isActive(session) || !session.events_url) {
      this._pollWhileDown();
      return;
    }
    const gen = this._gen;
    let ws;
    try {
      ws = new WebSocket(buildWsUrl(session.events_url, window.location));
    } catch {
      this._pollWhileDown();
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (gen !== this._gen) return;
      clearTimeout(this._pollTimer); // the socket says everything from now on
      this._pollTimer = 0;
    };
    ws.onmessage = (ev) => {
      if (gen !== this._gen || typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === MessageType.SESSION) {
        this._backoff.reset();
        this.update(msg.session);
      } else if (msg.type === MessageType.PROGRESS) {
        this.onProgress({ percent: msg.percent, message: msg.message });
      } else if (msg.type === MessageType.WATCHERS) {
        this.onWatchers(msg.watchers || [], (answer) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(answer));
        });
      }
    };
    ws.onclose = (ev) => {
      if (gen !== this._gen) return;
      this._ws = null;
      this.onWatchers(null); // told again on reconnect
      if (!this._following) return;
      this._pollWhileDown();
      const policy = closePolicy(ev.code);
      if (!policy.reconnect || !isActive(this.session)) return;
      const delay = this._backoff.next(Math.random(), policy.minDelay);
      this._reconnectTimer = setTimeout(() => {
        if (gen === this._gen && this._following) this._openSocket();
      }, delay);
    };
  }

  /** The fallback: a GET now and every POLL_MS, for as long as the socket is down. */
  _pollWhileDown() {
    if (this._pollTimer || !this._following) return;
    const tick = async () => {
      await this.refresh();
      if (this._following && !this.live) this._pollTimer = setTimeout(tick, POLL_MS);
      else this._pollTimer = 0;
    };
    this._pollTimer = setTimeout(tick, 0);
  }

  _closeSocket() {
    this._gen++;
    clearTimeout(this._reconnectTimer);
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
      this.onWatchers(null);
    }
  }
}
