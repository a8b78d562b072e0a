"""The terminal protocol's constants and input-rate rule (docs/terminal-protocol.md).

This module is their one source. The browser gets them from
``frontend/src/protocol-constants.js``, which ``frontend/build.mjs`` writes by running this file
(``python3 apps/terminals/protocol.py`` prints it); tests/unit/test_protocol.py and
frontend/test/protocol.test.mjs fail when the two differ. Every UPPER_CASE int, bool or str here
is exported, so keep the module free of Django and of anything but the protocol.
"""

from __future__ import annotations

import json
import sys
import time

KiB = 1024

# Close codes: why a terminal connection was refused or ended (4000-4999, every one exported).
UNAUTHENTICATED = 4001
FORBIDDEN = 4003
NOT_FOUND = 4004
POLICY = 4008
NOT_RUNNING = 4009
SANDBOX_ENDED = 4010
ENGINE_ERROR = 4011
#: A VM's one serial console was opened by another window; the page does not reconnect.
CONSOLE_TAKEN = 4012

# Control messages (JSON text frames with a "type").
RESIZE = "resize"  # browser → server {"type": "resize", "cols": .., "rows": ..}
ACK = "ack"  # browser → server {"type": "ack", "bytes": ..}
STATUS = "status"  # server → browser {"type": "status", "state": .., "tab"?: ..}
STATUS_ATTACHED = "attached"  # the ``state`` of a status meaning "shell attached"
SESSION = "session"  # events socket: {"type": "session", "session": {...}}
PROGRESS = "progress"  # events socket: {"type": "progress", "percent": .., "message": ..}
# Watching (docs/terminal-protocol.md, "Watching with consent").
WATCHERS = "watchers"  # events socket: {"type": .., "watchers": [{id, name, tab, asking, typing}]}
WATCH_ALLOW = "watch-allow"  # events socket, owner → server {"type": .., "watch": id}
WATCH_REFUSE = "watch-refuse"  # events socket, owner → server {"type": .., "watch": id}
WATCH_TAKE_BACK = "watch-take-back"  # events socket, owner → server {"type": .., "watch": id}
ASK_TO_TYPE = "ask-to-type"  # watch socket, watcher → server {"type": ..}
WATCH_STATE = "watch-state"  # watch socket: {"type": .., "asking": bool, "typing": bool}
WATCH_SCREEN = "watch-screen"  # watch socket: {"type": .., "cols", "rows"}, then the screen's bytes
WATCH_AWAY = "watch-away"  # watch socket: the student's terminal is closed for now

# Flow control, in bytes of output: stop reading from the sandbox above HIGH unacknowledged
# bytes, resume below LOW. The browser acknowledges at least every ACK_EVERY bytes.
HIGH_WATERMARK = 256 * KiB
LOW_WATERMARK = 64 * KiB
ACK_EVERY = 16 * KiB

# Input limits: a bigger frame closes with POLICY, and so does a frame when the bucket
# (INPUT_RATE_BURST frames, refilled at INPUT_RATE_PER_SECOND) is empty.
MAX_INPUT_FRAME = 64 * KiB
INPUT_RATE_PER_SECOND = 100
INPUT_RATE_BURST = 400
#: Acknowledgements cost the server a subtraction and a flood makes the browser send many:
#: they take no token. Every other frame (keystrokes, resizes, anything else) takes one.
ACKS_COUNT_AGAINST_RATE = False

MIN_COLS = 1
MAX_COLS = 1000
MIN_ROWS = 1
MAX_ROWS = 500
READ_CHUNK = 32 * KiB


class TokenBucket:
    """``burst`` tokens, refilled at ``per_second``; times in seconds (``time.monotonic``).

    The same rule as ``TokenBucket`` in frontend/src/flow.js (which counts milliseconds)."""

    def __init__(self, burst: float, per_second: float, now: float | None = None) -> None:
        self.burst, self.per_second = burst, per_second
        self.tokens = float(burst)
        self.last = time.monotonic() if now is None else now

    def take(self, now: float | None = None) -> bool:
        """Take one token if there is one."""
        now = time.monotonic() if now is None else now
        if now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
            self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def input_bucket(now: float | None = None) -> TokenBucket:
    """A connection's bucket for input frames: fresh per connection."""
    return TokenBucket(INPUT_RATE_BURST, INPUT_RATE_PER_SECOND, now)


def counts_against_rate(message_type: str | None) -> bool:
    """Whether a frame takes a token: ``None`` for a binary frame, else the JSON ``type``."""
    return message_type != ACK or ACKS_COUNT_AGAINST_RATE


def constants() -> dict[str, int | bool | str]:
    """Every exported constant, in the order defined."""
    return {
        name: value
        for name, value in globals().items()
        if name.isupper() and not name.startswith("_") and type(value) in (int, bool, str)
    }


def close_codes() -> dict[str, int]:
    """The close codes above, by name."""
    return {n: v for n, v in constants().items() if type(v) is int and 4000 <= v <= 4999}


def js_module() -> str:
    """frontend/src/protocol-constants.js, as this module defines it."""
    lines = [
        "// Generated from apps/terminals/protocol.py by frontend/build.mjs; do not edit.",
        "// Change the Python module and run `npm run build` (or `node build.mjs --constants`).",
        "",
    ]
    lines += [
        f"export const {n} = {json.dumps(v, ensure_ascii=False)};" for n, v in constants().items()
    ]
    lines += ["export const CLOSE_CODES = Object.freeze({"]
    lines += [f"  {n}: {v}," for n, v in close_codes().items()]
    lines += ["});", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(js_module())
