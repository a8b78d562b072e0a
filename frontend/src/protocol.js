// Terminal WebSocket protocol constants: the JavaScript twin of
// apps/terminals/protocol.py. Both mirror docs/terminal-protocol.md; change all three together.

const KiB = 1024;

/** Server stops reading from the sandbox when more than this many output bytes are unacknowledged. */
export const HIGH_WATERMARK = 256 * KiB;
/** ...and resumes once fewer than this many are unacknowledged. */
export const LOW_WATERMARK = 64 * KiB;
/** The browser batches acknowledgements to at least this many bytes (or "nothing pending"). */
export const ACK_EVERY = 16 * KiB;

/** An incoming (browser -> server) frame larger than this closes the socket with 4008. */
export const MAX_INPUT_FRAME = 64 * KiB;
/**
 * Input rate limit (token bucket on frames): INPUT_RATE_BURST frames, refilled at
 * INPUT_RATE_PER_SECOND. The server counts every frame it receives, text (ack, resize)
 * as well as binary, so the browser budgets all of them (see flow.js).
 */
export const INPUT_RATE_BURST = 400;
export const INPUT_RATE_PER_SECOND = 100;

/** Resize bounds (inclusive). */
export const MIN_COLS = 1;
export const MAX_COLS = 1000;
export const MIN_ROWS = 1;
export const MAX_ROWS = 500;

/** Reconnect backoff: 0.5 s doubling to 10 s, with jitter. */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 10_000;

/** Tabs per session in the lab page (tab numbers are 1..MAX_TABS). */
export const MAX_TABS = 4;

/** WebSocket close codes. */
export const CloseCode = Object.freeze({
  UNAUTHENTICATED: 4001,
  FORBIDDEN: 4003,
  NOT_FOUND: 4004,
  POLICY: 4008,
  NOT_RUNNING: 4009,
  SANDBOX_ENDED: 4010,
  ENGINE_ERROR: 4011,
  // Standard codes 1000-1015: network trouble or server restart.
  STANDARD_MIN: 1000,
  STANDARD_MAX: 1015,
});

/** Control message types (JSON text frames). */
export const MessageType = Object.freeze({
  RESIZE: 'resize', // browser -> server {"type":"resize","cols":..,"rows":..}
  ACK: 'ack', // browser -> server {"type":"ack","bytes":..}
  STATUS: 'status', // server -> browser {"type":"status","state":..,"tab"?:..,"message"?:..}
  // events socket (/ws/sessions/<id>/events/)
  SESSION: 'session', // {"type":"session","session":{...}}
  PROGRESS: 'progress', // {"type":"progress","percent":..,"message":..}
});

/** The `state` of a status message meaning "shell attached; output follows". */
export const STATUS_ATTACHED = 'attached';

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
