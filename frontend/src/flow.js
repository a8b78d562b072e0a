// Pure logic of the terminal and lab page: no DOM, no timers, no globals, so that
// `node --test` can exercise it. Everything time- or randomness-dependent takes the
// clock or the random number as an argument.

import {
  ACKS_COUNT_AGAINST_RATE,
  ACK_EVERY,
  CloseCode,
  INPUT_RATE_BURST,
  INPUT_RATE_PER_SECOND,
  MAX_COLS,
  MAX_INPUT_FRAME,
  MAX_ROWS,
  MIN_COLS,
  MIN_ROWS,
  MessageType,
  RECONNECT_BASE_MS,
  RECONNECT_MAX_MS,
} from './protocol.js';

// ---------------------------------------------------------------------------
// Flow control: acknowledging written output
// ---------------------------------------------------------------------------

/**
 * Counts output bytes handed to term.write() and bytes whose write callback fired,
 * and decides when to send {"type":"ack","bytes":n}: once at least `every` bytes
 * are written but not yet acknowledged, or when nothing is pending any more.
 */
export class AckBatcher {
  constructor(every = ACK_EVERY) {
    this.every = every;
    this.reset();
  }

  reset() {
    /** bytes given to term.write() whose callback has not fired yet */
    this.inFlight = 0;
    /** bytes written (callback fired) but not yet acknowledged */
    this.unacked = 0;
  }

  /** n bytes were handed to term.write(). */
  received(n) {
    this.inFlight += n;
  }

  /**
   * The write of n bytes finished. Returns the number of bytes to acknowledge now
   * (0 = do not send an ack yet).
   */
  written(n) {
    this.inFlight = Math.max(0, this.inFlight - n);
    this.unacked += n;
    // Only whole batches: a remainder below ACK_EVERY is far under the server's low
    // watermark, so it never stalls output, and a trickle of small frames (tmux repainting
    // under a flood) does not cost one ack each. Measured in bench/README.md.
    if (this.unacked >= this.every) {
      const bytes = this.unacked;
      this.unacked = 0;
      return bytes;
    }
    return 0;
  }
}

// ---------------------------------------------------------------------------
// Reconnecting
// ---------------------------------------------------------------------------

/**
 * Delay before reconnect attempt number `attempt` (0-based): 0.5 s doubling to 10 s,
 * with jitter taking off up to a quarter (so the cap is never exceeded and clients
 * that dropped together do not come back together). `rand` is in [0, 1).
 */
export function backoffDelay(attempt, rand, base = RECONNECT_BASE_MS, max = RECONNECT_MAX_MS) {
  const exp = Math.min(max, base * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(exp * (1 - 0.25 * rand));
}

export class Backoff {
  constructor(base = RECONNECT_BASE_MS, max = RECONNECT_MAX_MS) {
    this.base = base;
    this.max = max;
    this.attempt = 0;
  }

  /** Delay for the next attempt (and count it). `minDelay` raises the floor. */
  next(rand = Math.random(), minDelay = 0) {
    const d = backoffDelay(this.attempt, rand, this.base, this.max);
    this.attempt += 1;
    return Math.max(d, minDelay);
  }

  reset() {
    this.attempt = 0;
  }
}

/**
 * What the browser does when a terminal socket closes with `code`
 * (docs/terminal-protocol.md, "Close codes"): one entry per close code of the server.
 * Returns {reconnect, reason, minDelay}; `reason` is a key that messages.js turns into the
 * notice shown (text, and a log-in link or a button where there is one).
 */
export function closePolicy(code) {
  switch (code) {
    case CloseCode.UNAUTHENTICATED: // logged out: a link to log in, never a loop
      return { reconnect: false, reason: 'unauthenticated', minDelay: 0 };
    case CloseCode.FORBIDDEN:
      return { reconnect: false, reason: 'forbidden', minDelay: 0 };
    case CloseCode.NOT_FOUND:
      return { reconnect: false, reason: 'not_found', minDelay: 0 };
    case CloseCode.POLICY:
      return { reconnect: true, reason: 'policy', minDelay: 3000 };
    case CloseCode.NOT_RUNNING:
      return { reconnect: true, reason: 'not_running', minDelay: 2000 };
    case CloseCode.SANDBOX_ENDED: // the page follows the session and says why
      return { reconnect: false, reason: 'ended', minDelay: 0 };
    case CloseCode.ENGINE_ERROR:
      return { reconnect: true, reason: 'engine', minDelay: 0 };
    case CloseCode.CONSOLE_TAKEN: // another window has the VM's console: offer to take it back
      return { reconnect: false, reason: 'taken', minDelay: 0 };
    default:
      // 1000-1015 (network trouble, server restart) and anything unexpected.
      return { reconnect: true, reason: 'network', minDelay: 0 };
  }
}

/** The log-in page for `loginUrl`, coming back to the current page afterwards. */
export function loginHref(loginUrl, location) {
  const url = new URL(loginUrl || '/accounts/login/', location.href);
  url.searchParams.set('next', location.pathname + (location.search || ''));
  return url.origin === new URL(location.href).origin ? url.pathname + url.search : url.href;
}

/**
 * Milliseconds a Retry-After header value asks to wait (delta-seconds or an HTTP date),
 * 0 if absent or unreadable. `nowMs` is Date.now().
 */
export function retryAfterMs(value, nowMs) {
  if (value === null || value === undefined || String(value).trim() === '') return 0;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : 0;
}

// ---------------------------------------------------------------------------
// Input: frame size and rate limits
// ---------------------------------------------------------------------------

/**
 * Whether the server takes a token of its input bucket for a frame: `null` for a binary
 * frame, else the control message. Acknowledgements take none (ACKS_COUNT_AGAINST_RATE is
 * false in apps/terminals/protocol.py); keystrokes, resizes and anything else take one.
 */
export function countsAgainstRate(message, acksCount = ACKS_COUNT_AGAINST_RATE) {
  return !message || message.type !== MessageType.ACK || acksCount;
}

/**
 * The browser's share of the server's input bucket (INPUT_RATE_BURST frames refilled at
 * INPUT_RATE_PER_SECOND, over the frames countsAgainstRate() names). The browser stays well
 * below it, because network jitter can bunch frames up on arrival: keystrokes get 40 % of
 * the burst and 60 % of the rate, resizes 10 % and 20 %; together half the burst and 80 %
 * of the rate. Acknowledgements are not budgeted: the server does not count them.
 */
export const KEYS_BUDGET = Object.freeze({
  burst: Math.max(1, Math.floor(INPUT_RATE_BURST * 0.4)),
  perSecond: INPUT_RATE_PER_SECOND * 0.6,
});
export const CONTROL_BUDGET = Object.freeze({
  burst: Math.max(1, Math.floor(INPUT_RATE_BURST * 0.1)),
  perSecond: INPUT_RATE_PER_SECOND * 0.2,
});

/**
 * A token bucket: `burst` tokens, refilled at `perSecond`; times in milliseconds. The same
 * rule as TokenBucket in apps/terminals/protocol.py, which limits the server's input; the
 * tests use this one, with the server's parameters, as the model of the server.
 */
export class TokenBucket {
  constructor(burst, perSecond, now = 0) {
    this.burst = burst;
    this.perSecond = perSecond;
    this.tokens = burst;
    this.last = now;
  }

  _refill(now) {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
    }
  }

  /** Take one token if there is one. */
  take(now) {
    this._refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is available (0 if one is). */
  delay(now) {
    this._refill(now);
    if (this.tokens >= 1) return 0;
    return Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
  }
}

/**
 * Queues keystroke bytes and releases them as frames that respect the server's limits:
 * at most `maxFrame` bytes per frame, and a token bucket (KEYS_BUDGET by default).
 * While frames wait, later input is coalesced into them, so input order is kept and
 * typing never waits behind anything but earlier input.
 */
export class InputThrottle {
  constructor({
    burst = KEYS_BUDGET.burst,
    perSecond = KEYS_BUDGET.perSecond,
    maxFrame = MAX_INPUT_FRAME,
    maxQueued = 4 * 1024 * 1024,
    now = 0,
  } = {}) {
    this.bucket = new TokenBucket(burst, perSecond, now);
    this.maxFrame = maxFrame;
    this.maxQueued = maxQueued;
    /** @type {Uint8Array[]} */
    this.queue = [];
    this.queued = 0;
  }

  /** Queue bytes. Returns false (and queues nothing) if that would exceed maxQueued. */
  push(bytes) {
    if (!bytes.length) return true;
    if (this.queued + bytes.length > this.maxQueued) return false;
    this.queue.push(bytes);
    this.queued += bytes.length;
    return true;
  }

  get pending() {
    return this.queued;
  }

  /** Frames that may be sent now (each at most maxFrame bytes). */
  take(now) {
    const frames = [];
    while (this.queued > 0 && this.bucket.take(now)) frames.push(this._nextFrame());
    return frames;
  }

  /** Milliseconds until take() can release something (null: nothing queued). */
  delay(now) {
    return this.queued ? this.bucket.delay(now) : null;
  }

  clear() {
    this.queue = [];
    this.queued = 0;
  }

  _nextFrame() {
    const size = Math.min(this.maxFrame, this.queued);
    const first = this.queue[0];
    if (first.length === size) {
      this.queue.shift();
      this.queued -= size;
      return first;
    }
    const frame = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const chunk = this.queue[0];
      const n = Math.min(chunk.length, size - off);
      frame.set(n === chunk.length ? chunk : chunk.subarray(0, n), off);
      off += n;
      if (n === chunk.length) this.queue.shift();
      else this.queue[0] = chunk.subarray(n);
    }
    this.queued -= size;
    return frame;
  }
}

/**
 * Control messages waiting to be sent: only the latest size is kept, and acknowledged
 * bytes add up into one ack, so nothing is lost by waiting. A resize waits for a token of
 * the CONTROL_BUDGET; an ack waits only if the server counts acks (countsAgainstRate).
 * take() returns the message objects to send now (a resize before an ack).
 */
export class ControlQueue {
  constructor({
    burst = CONTROL_BUDGET.burst,
    perSecond = CONTROL_BUDGET.perSecond,
    now = 0,
    acksCount = ACKS_COUNT_AGAINST_RATE,
  } = {}) {
    this.bucket = new TokenBucket(burst, perSecond, now);
    this.acksCount = acksCount;
    this.ackBytes = 0;
    this.size = null;
  }

  ack(bytes) {
    if (bytes > 0) this.ackBytes += bytes;
  }

  resize(cols, rows) {
    this.size = { cols, rows };
  }

  get pending() {
    return !!this.size || this.ackBytes > 0;
  }

  take(now) {
    const out = [];
    if (this.size && this.bucket.take(now)) {
      out.push({ type: MessageType.RESIZE, cols: this.size.cols, rows: this.size.rows });
      this.size = null;
    }
    const ack = { type: MessageType.ACK, bytes: this.ackBytes };
    if (this.ackBytes > 0 && (!countsAgainstRate(ack, this.acksCount) || this.bucket.take(now))) {
      out.push(ack);
      this.ackBytes = 0;
    }
    return out;
  }

  /** Milliseconds until take() can send something (null: nothing pending). */
  delay(now) {
    if (this.ackBytes > 0 && !countsAgainstRate({ type: MessageType.ACK }, this.acksCount)) return 0;
    return this.pending ? this.bucket.delay(now) : null;
  }
}

/** A binary string from xterm's onBinary (one char per byte) as bytes. */
export function binaryStringToBytes(str) {
  const out = new Uint8Array(str.length);
  for (let i = 0; i < str.length; i++) out[i] = str.charCodeAt(i) & 0xff;
  return out;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** Clamp a terminal size to the protocol's bounds; null if not a usable size. */
export function clampSize(cols, rows) {
  if (!Number.isFinite(cols) || !Number.isFinite(rows) || cols < 1 || rows < 1) return null;
  return {
    cols: Math.min(MAX_COLS, Math.max(MIN_COLS, Math.floor(cols))),
    rows: Math.min(MAX_ROWS, Math.max(MIN_ROWS, Math.floor(rows))),
  };
}

/**
 * Absolute ws:// or wss:// URL for a path given by the API (e.g. session.terminal_url + "1/"),
 * resolved against the page location, with `params` added to the query.
 */
export function buildWsUrl(path, location, params = {}) {
  const url = new URL(path, location.href);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
  return url.toString();
}

/**
 * The lines of a ```bash block to be typed into the terminal, one per Enter.
 * Trailing blank lines are dropped; blank lines inside (heredocs) are kept.
 */
export function commandLines(text) {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  while (lines.length && lines[0].trim() === '') lines.shift();
  return lines;
}

/** 2700 -> "45:00", 3725 -> "1:02:05", negative -> "0:00". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Timer colour level: "danger" under a minute, "warning" under five minutes. */
export function timerLevel(seconds) {
  if (seconds < 60) return 'danger';
  if (seconds < 300) return 'warning';
  return '';
}

/** The data-session attribute: JSON of a session, or an empty string. */
export function parseSessionAttr(value) {
  if (!value || !value.trim()) return null;
  try {
    const s = JSON.parse(value);
    return s && typeof s === 'object' && s.id ? s : null;
  } catch {
    return null;
  }
}

/** The value of cookie `name` from a document.cookie string, or "". */
export function readCookie(cookieString, name) {
  for (const part of (cookieString || '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return '';
}
