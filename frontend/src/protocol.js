// Terminal WebSocket protocol (docs/terminal-protocol.md) as the browser sees it.
//
// The constants the server shares are defined once, in apps/terminals/protocol.py, and reach
// this code through ./protocol-constants.js, which build.mjs writes from it (a test on each
// side fails when the two differ). This file adds only what the browser alone decides:
// reconnect timing, tab count, and the session states of docs/api.md.

import * as shared from './protocol-constants.js';

// All of them (watermarks, input limits, ACKS_COUNT_AGAINST_RATE, size bounds, message types,
// CLOSE_CODES...); what each means is said once, beside its definition in protocol.py.
export * from './protocol-constants.js';

/** Reconnect backoff: 0.5 s doubling to 10 s, with jitter. */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 10_000;

/** Tabs per session in the lab page (tab numbers are 1..MAX_TABS). */
export const MAX_TABS = 4;

/** WebSocket close codes: the server's, and the standard range (network, restart). */
export const CloseCode = Object.freeze({
  ...shared.CLOSE_CODES,
  STANDARD_MIN: 1000,
  STANDARD_MAX: 1015,
});

/** Control message types (JSON text frames). */
export const MessageType = Object.freeze({
  RESIZE: shared.RESIZE, // browser -> server {"type":"resize","cols":..,"rows":..}
  ACK: shared.ACK, // browser -> server {"type":"ack","bytes":..}
  STATUS: shared.STATUS, // server -> browser {"type":"status","state":..,"tab"?:..}
  // events socket (/ws/sessions/<id>/events/)
  SESSION: shared.SESSION, // {"type":"session","session":{...}}
  PROGRESS: shared.PROGRESS, // {"type":"progress","percent":..,"message":..}
  // watching with consent (docs/terminal-protocol.md)
  WATCHERS: shared.WATCHERS, // events socket: who watches the student's terminal
  WATCH_ALLOW: shared.WATCH_ALLOW, // events socket, owner -> server {"watch": id}
  WATCH_REFUSE: shared.WATCH_REFUSE,
  WATCH_TAKE_BACK: shared.WATCH_TAKE_BACK,
  ASK_TO_TYPE: shared.ASK_TO_TYPE, // watch socket, watcher -> server
  WATCH_STATE: shared.WATCH_STATE, // watch socket {"asking","typing"}
  WATCH_SCREEN: shared.WATCH_SCREEN, // watch socket {"cols","rows"} then the screen's bytes
  WATCH_AWAY: shared.WATCH_AWAY, // watch socket: the student's terminal is closed
});

/** Session states (docs/api.md). */
export const SessionState = Object.freeze({
  REQUESTED: 'requested',
  STARTING: 'starting',
  RUNNING: 'running',
  STOPPING: 'stopping',
  STOPPED: 'stopped',
  EXPIRED: 'expired',
  FAILED: 'failed',
});

/** States in which a session still holds (or is getting) a sandbox. */
export const ACTIVE_STATES = Object.freeze([
  SessionState.REQUESTED,
  SessionState.STARTING,
  SessionState.RUNNING,
  SessionState.STOPPING,
]);

/** States that are final. */
export const FINAL_STATES = Object.freeze([
  SessionState.STOPPED,
  SessionState.EXPIRED,
  SessionState.FAILED,
]);
