// Generated from apps/terminals/protocol.py by frontend/build.mjs; do not edit.
// Change the Python module and run `npm run build` (or `node build.mjs --constants`).

export const UNAUTHENTICATED = 4001;
export const FORBIDDEN = 4003;
export const NOT_FOUND = 4004;
export const POLICY = 4008;
export const NOT_RUNNING = 4009;
export const SANDBOX_ENDED = 4010;
export const ENGINE_ERROR = 4011;
export const CONSOLE_TAKEN = 4012;
export const RESIZE = "resize";
export const ACK = "ack";
export const STATUS = "status";
export const STATUS_ATTACHED = "attached";
export const SESSION = "session";
export const PROGRESS = "progress";
export const WATCHERS = "watchers";
export const WATCH_ALLOW = "watch-allow";
export const WATCH_REFUSE = "watch-refuse";
export const WATCH_TAKE_BACK = "watch-take-back";
export const ASK_TO_TYPE = "ask-to-type";
export const WATCH_STATE = "watch-state";
export const WATCH_SCREEN = "watch-screen";
export const WATCH_AWAY = "watch-away";
export const HIGH_WATERMARK = 262144;
export const LOW_WATERMARK = 65536;
export const ACK_EVERY = 16384;
export const MAX_INPUT_FRAME = 65536;
export const INPUT_RATE_PER_SECOND = 100;
export const INPUT_RATE_BURST = 400;
export const ACKS_COUNT_AGAINST_RATE = false;
export const MIN_COLS = 1;
export const MAX_COLS = 1000;
export const MIN_ROWS = 1;
export const MAX_ROWS = 500;
export const READ_CHUNK = 32768;
export const CLOSE_CODES = Object.freeze({
  UNAUTHENTICATED: 4001,
  FORBIDDEN: 4003,
  NOT_FOUND: 4004,
  POLICY: 4008,
  NOT_RUNNING: 4009,
  SANDBOX_ENDED: 4010,
  ENGINE_ERROR: 4011,
  CONSOLE_TAKEN: 4012,
});
