"""asciicast v2 lines (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header, then
one JSON array per event, ``[seconds, code, data]``. Pure functions, no I/O."""

from __future__ import annotations

import codecs
import json
from datetime import datetime

OUTPUT, RESIZE, MARKER = "o", "r", "m"


def header_line(*, cols: int, rows: int, started: datetime, title: str) -> str:
    header = {
        "version": 2,
        "width": cols,
        "height": rows,
        "timestamp": int(started.timestamp()),
        "title": title,
        "env": {"TERM": "xterm-256color"},
    }
    return json.dumps(header, ensure_ascii=False) + "\n"


def event_line(seconds: float, code: str, data: str) -> str:
    return json.dumps([round(seconds, 6), code, data], ensure_ascii=False) + "\n"


def resize_data(cols: int, rows: int) -> str:
    return f"{cols}x{rows}"


def output_decoder() -> codecs.IncrementalDecoder:
    """Terminal bytes to text across chunk boundaries: a character split between two reads
    is held back until its last byte arrives; bytes that are not UTF-8 become U+FFFD."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace")
