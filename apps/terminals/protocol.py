"""Terminal protocol constants (docs/terminal-protocol.md); mirrored in frontend/src/protocol.js."""

# Close codes: why a terminal connection was refused or ended.
UNAUTHENTICATED = 4001
FORBIDDEN = 4003
NOT_FOUND = 4004
POLICY = 4008
NOT_RUNNING = 4009
SANDBOX_ENDED = 4010
ENGINE_ERROR = 4011
#: A VM's one serial console was opened by another window; the page does not reconnect.
CONSOLE_TAKEN = 4012

# Flow control, in bytes of output: stop reading from the sandbox above HIGH unacknowledged
# bytes, resume below LOW. The browser acknowledges at least every ACK_EVERY bytes.
HIGH_WATERMARK = 256 * 1024
LOW_WATERMARK = 64 * 1024
ACK_EVERY = 16 * 1024

# Input limits.
MAX_INPUT_FRAME = 64 * 1024
INPUT_RATE_PER_SECOND = 100
INPUT_RATE_BURST = 400

MAX_COLS = 1000
MAX_ROWS = 500
READ_CHUNK = 32 * 1024
