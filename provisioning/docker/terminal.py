"""A terminal tab in a container: a tmux *control* client started by exec, bridged on the
event loop.

Why control mode (``tmux -CC``, tmux's ``CONTROL MODE`` section): an ordinary tmux client
redraws tmux's own screen onto the browser's, and for a burst of output it sends "scroll
up 24 lines" and the last screen, so the lines in between never reach xterm.js and its
scrollback ends up with holes and fragments of old screens. A control client instead gets
``%output`` notifications carrying the bytes the programs wrote, which go to xterm.js as
they are: its scrollback is exactly what was printed, and vim or less switch xterm.js to
its own alternate screen. tmux still keeps the shell alive between connections.

Keystrokes go back as ``send-keys -H`` (each byte in hex, written to the pane untouched);
sizes as ``refresh-client -C``. On attach, the first ``read`` asks tmux for the pane's
state and contents and returns them as one replay (``replay_bytes``): the history, the
screen, the cursor and the modes (``\\e[?1049h`` if a full-screen program is running).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Lines of tmux history replayed on attach (the image's ``history-limit`` keeps as many).
REPLAY_LINES = 10_000
#: Bytes of input per ``send-keys`` command (3 characters each in hex; lines stay short).
KEYS_PER_COMMAND = 256
#: The DCS tmux wraps a ``-CC`` session in.
_DCS_START = b"\x1bP1000p"
_OCTAL = re.compile(rb"\\([0-7]{3})")

#: ``display-message`` format of the pane's state, in ``PaneState``'s field order.
_STATE_FIELDS = (
    "pane_id", "alternate_on", "cursor_x", "cursor_y", "pane_height", "history_size",
    "cursor_flag", "keypad_cursor_flag", "keypad_flag", "mouse_standard_flag",
    "mouse_button_flag", "mouse_any_flag", "mouse_sgr_flag", "scroll_region_upper",
    "scroll_region_lower",
)  # fmt: skip
STATE_FORMAT = " ".join(f"#{{{name}}}" for name in _STATE_FIELDS)


@dataclass(frozen=True)
class PaneState:
    pane_id: str
    alternate_on: bool
    cursor_x: int
    cursor_y: int
    pane_height: int
    history_size: int
    cursor_flag: bool = True
    keypad_cursor_flag: bool = False
    keypad_flag: bool = False
    mouse_standard_flag: bool = False
    mouse_button_flag: bool = False
    mouse_any_flag: bool = False
    mouse_sgr_flag: bool = False
    scroll_region_upper: int = 0
    scroll_region_lower: int = 0

    @classmethod
    def parse(cls, line: bytes) -> PaneState:
        """The reply to ``display-message -p STATE_FORMAT``."""
        words = line.decode(errors="replace").split()
        if len(words) != len(_STATE_FIELDS):
            raise ValueError(f"unexpected pane state {line!r}")
        values: dict = {"pane_id": words[0]}
        for name, word in zip(_STATE_FIELDS[1:], words[1:], strict=True):
            kind = cls.__dataclass_fields__[name].type
            values[name] = word == "1" if kind == "bool" else int(word or 0)
        return cls(**values)


def decode_output(escaped: bytes) -> bytes:
    """The bytes of a ``%output`` value (tmux writes ``\\ooo`` for controls and ``\\``)."""
    return _OCTAL.sub(lambda m: bytes([int(m[1], 8)]), escaped)


def keys_commands(data: bytes, pane: str = "") -> bytes:
    """``send-keys -H`` lines writing ``data`` to the pane byte for byte (UTF-8 included:
    a hex key is written raw, never looked up as a key name)."""
    target = f" -t {pane}" if pane else ""
    lines = []
    for start in range(0, len(data), KEYS_PER_COMMAND):
        chunk = data[start : start + KEYS_PER_COMMAND]
        lines.append(f"send-keys{target} -H {chunk.hex(' ')}\n")
    return "".join(lines).encode()


def history_command(state: PaneState, limit: int = REPLAY_LINES) -> str | None:
    """The ``capture-pane`` of the history, or None when there is none (``-E -1`` of an
    empty history would return the screen's first line, which is replayed anyway)."""
    lines = min(limit, state.history_size)
    if lines <= 0:
        return None
    return f"capture-pane -p -e -J -S -{lines} -E -1"


def screen_commands(state: PaneState) -> list[str]:
    """What else to capture: the normal screen (with ``-J``: xterm.js rewraps it itself),
    and in a full-screen program also the screen it shows, row for row."""
    if state.alternate_on:
        return ["capture-pane -p -e -J -a -q", "capture-pane -p -e -S 0 -E -"]
    return [f"capture-pane -p -e -J -S 0 -E {state.cursor_y}"]


def replay_bytes(state: PaneState, history: list[bytes], screens: list[list[bytes]]) -> bytes:
    """What xterm.js must be sent to show the pane as tmux has it, history in its
    scrollback in order: lines, then the cursor and the modes tmux knows the pane is in."""
    out = bytearray(b"\x1b[0m")
    normal = screens[0] if screens else []
    lines = [*history, *normal]
    if state.alternate_on:
        # The normal screen scrolls into xterm.js's scrollback only once a full-screen
        # program ends: lines as they were, then the program's screen on xterm.js's own
        # alternate buffer, row by row.
        out += b"\r\n\x1b[0m".join(lines)
        out += b"\x1b[0m\x1b[?1049h\x1b[H\x1b[2J"
        for row, text in enumerate(screens[1] if len(screens) > 1 else []):
            out += b"\x1b[%d;1H" % (row + 1) + text + b"\x1b[0m"
    else:
        # The last line is the cursor's (captured up to it); lines below it are empty.
        out += b"\r\n\x1b[0m".join(lines) + b"\x1b[0m"
    out += _modes(state)
    return bytes(out)


def _modes(state: PaneState) -> bytes:
    out = bytearray()
    full = state.scroll_region_upper == 0 and state.scroll_region_lower in (
        0, state.pane_height - 1,
    )  # fmt: skip
    if not full:
        out += b"\x1b[%d;%dr" % (state.scroll_region_upper + 1, state.scroll_region_lower + 1)
    if state.alternate_on or not full:
        out += b"\x1b[%d;%dH" % (state.cursor_y + 1, state.cursor_x + 1)
    else:
        out += b"\x1b[%dG" % (state.cursor_x + 1)
    flags = (
        (state.keypad_cursor_flag, b"\x1b[?1h"),
        (state.keypad_flag, b"\x1b="),
        (state.mouse_standard_flag, b"\x1b[?1000h"),
        (state.mouse_button_flag, b"\x1b[?1002h"),
        (state.mouse_any_flag, b"\x1b[?1003h"),
        (state.mouse_sgr_flag, b"\x1b[?1006h"),
        (not state.cursor_flag, b"\x1b[?25l"),
    )
    for on, seq in flags:
        if on:
            out += seq
    return bytes(out)


class ControlParser:
    """Splits a control client's output into events: ``("output", pane, bytes)``,
    ``("reply", ok, lines)`` for a command of ours (flag 1), ``("exit", reason)``."""

    def __init__(self) -> None:
        self._buf = b""
        self._block: list[bytes] | None = None
        self._block_ours = False
        self._begin: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple]:
        self._buf += data
        events: list[tuple] = []
        while (end := self._buf.find(b"\n")) >= 0:
            line = self._buf[:end].removesuffix(b"\r")
            self._buf = self._buf[end + 1 :]
            if line.startswith(_DCS_START):
                line = line[len(_DCS_START) :]
            event = self._line(line)
            if event:
                events.append(event)
        return events

    def _line(self, line: bytes) -> tuple | None:
        if self._block is not None:
            if line.startswith((b"%end ", b"%error ")) and self._closes(line):
                lines, self._block = self._block, None
                if self._block_ours:
                    return ("reply", line.startswith(b"%end "), lines)
                return None
            self._block.append(line)
            return None
        if line.startswith(b"%output "):
            _, pane, value = [*line.split(b" ", 2), b""][:3]
            return ("output", pane.decode(), decode_output(value))
        if line.startswith(b"%begin "):
            self._block = []
            self._block_ours = line.rsplit(b" ", 1)[-1] == b"1"
            self._begin = line.split(b" ")[1:3]
            return None
        if line.startswith(b"%session-changed "):
            return ("session",)
        if line.startswith(b"%exit"):
            return ("exit", line[6:].decode(errors="replace"))
        return None  # other notifications (%window-add, %layout-change, ...) are not ours

    def _closes(self, line: bytes) -> bool:
        return line.split(b" ")[1:3] == self._begin


class DockerTerminal:
    """Implements ``provisioning.base.Terminal`` for one exec running ``tmux -CC``
    (``config.terminal_command``)."""

    def __init__(
        self,
        *,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        replay: bytes,
        resize: Callable[[int, int], Awaitable[None]],
        detach: Callable[[], Awaitable[None]],
    ) -> None:
        self.replay = replay  # tmux's replay is the first read (see ``_attach``)
        self.ended_reason = ""  # a tmux tab can be shared: nobody takes it from another
        self._reader = reader
        self._writer = writer
        self._resize = resize
        self._detach = detach
        self._closed = False
        self._parser = ControlParser()
        self._replies: collections.deque[asyncio.Future | None] = collections.deque()
        self._pending = bytearray()
        self._pane = ""
        self._attached = False
        self._eof = False
        self._in_session = False  # tmux has attached us (commands before go astray)
        self._early = bytearray()  # keystrokes before that

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self._closed:
            return b""
        try:
            if not self._attached:
                self._attached = True
                self._pending[:0] = await self._attach()
            while not self._pending and not self._eof:
                await self._pump()
        except (ConnectionError, OSError, ValueError, TimeoutError):
            log.debug("terminal stream ended", exc_info=True)
            return b""
        data = bytes(self._pending[:max_bytes])
        del self._pending[:max_bytes]
        return data

    async def write(self, data: bytes) -> None:
        if not self._pane:
            self._early += data
        elif data:
            await self._send(keys_commands(data, self._pane), replies=-1)

    async def resize(self, *, cols: int, rows: int) -> None:
        if not self._closed:
            await self._send(f"refresh-client -C {cols}x{rows}\n".encode(), replies=1)
            with contextlib.suppress(Exception):  # the exec's own TTY, for tools that ask
                await self._resize(cols, rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # Closing the socket alone would leave the tmux client (and the exec) running.
            await self._detach()
        except Exception:  # the sandbox may already be gone; nothing is left to detach
            log.debug("detach failed", exc_info=True)
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    # -------------------------------------------------------------------------

    async def _attach(self) -> bytes:
        """The replay: everything tmux has of the pane, asked for in order. Output that
        arrives before the last answer is already in what the captures return."""
        while not self._in_session:
            if self._eof:
                raise ConnectionError("tmux ended before attaching")
            await asyncio.wait_for(self._pump(), timeout=10)
        (state_line, *_) = await self._ask(f"display-message -p '{STATE_FORMAT}'") or [b""]
        state = PaneState.parse(state_line)
        self._pane = state.pane_id
        command = history_command(state)
        history = await self._ask(command) if command else []
        screens = [await self._ask(c) for c in screen_commands(state)]
        early, self._early = bytes(self._early), bytearray()
        await self.write(early)
        return replay_bytes(state, history, screens)

    async def _ask(self, command: str) -> list[bytes]:
        future = asyncio.get_running_loop().create_future()
        await self._send(f"{command}\n".encode(), replies=0, future=future)
        while not future.done():
            if self._eof:
                raise ConnectionError("tmux ended during attach")
            await asyncio.wait_for(self._pump(), timeout=10)
        return future.result()

    async def _send(self, line: bytes, *, replies: int, future=None) -> None:
        """Write command lines; one reply slot each (``replies=-1``: count the lines)."""
        if self._closed or self._writer.is_closing():
            return
        count = line.count(b"\n") if replies == -1 else 1
        for _ in range(count):
            self._replies.append(future)
        self._writer.write(line)
        await self._writer.drain()

    async def _pump(self) -> None:
        chunk = await self._reader.read(65536)
        if not chunk:
            self._eof = True
            return
        for event in self._parser.feed(chunk):
            kind = event[0]
            if kind == "output":
                if event[1] == self._pane or not self._pane:
                    self._pending += event[2]
            elif kind == "reply":
                future = self._replies.popleft() if self._replies else None
                if future is not None and not future.done():
                    # An answer of the attach: what was output before it, it includes.
                    self._pending.clear()
                    future.set_result(event[2] if event[1] else [])
            elif kind == "session":
                self._in_session = True
            elif kind == "exit":
                self._eof = True
