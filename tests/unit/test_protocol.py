"""The terminal protocol has one source, apps/terminals/protocol.py: the browser's copy is
generated from it, the doc agrees with it, and the consumer applies its rate rule."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from apps.recordings.recorder import Recorder
from apps.sessions import sandbox
from apps.terminals import protocol
from apps.terminals.consumers import TerminalConsumer
from apps.terminals.watching import TabBroadcast

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "frontend" / "src" / "protocol-constants.js"
DOC = ROOT / "docs" / "terminal-protocol.md"


def test_the_browser_constants_are_generated_from_this_module():
    assert GENERATED.read_text(encoding="utf-8") == protocol.js_module(), (
        "frontend/src/protocol-constants.js is stale: run `cd frontend && npm run build`"
    )


def test_the_module_prints_them_without_django():
    # What frontend/build.mjs runs: a bare interpreter, no settings, no virtualenv needed.
    out = subprocess.run(
        [sys.executable, "-I", str(ROOT / "apps" / "terminals" / "protocol.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert out.stdout == protocol.js_module()


def test_every_constant_reaches_the_browser():
    generated = GENERATED.read_text(encoding="utf-8")
    values = dict(re.findall(r"^export const (\w+) = (.+);$", generated, re.M))
    for name, value in protocol.constants().items():
        assert json.loads(values[name]) == value, name
    for name in ("CONSOLE_TAKEN", "SANDBOX_ENDED", "UNAUTHENTICATED", "ACKS_COUNT_AGAINST_RATE"):
        assert name in values


def test_close_codes_are_distinct_4000s_and_all_in_the_doc_table():
    codes = protocol.close_codes()
    assert codes["CONSOLE_TAKEN"] == 4012
    assert len(set(codes.values())) == len(codes)
    assert all(4000 <= code <= 4999 for code in codes.values())
    rows = re.findall(r"^\|\s*(\d{4})\s*\|\s*`(\w+)`\s*\|", DOC.read_text(encoding="utf-8"), re.M)
    assert {name: int(code) for code, name in rows} == codes


def test_token_bucket_is_the_browsers_rule():
    # The numbers of frontend/test/flow.test.mjs's TokenBucket test, in seconds.
    bucket = protocol.TokenBucket(2, 4, now=0.0)
    assert bucket.take(0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.0)
    assert not bucket.take(0.249)
    assert bucket.take(0.250)
    assert bucket.take(10.0)
    assert bucket.take(10.0)
    assert not bucket.take(10.0)  # never more than the burst


def test_acks_take_no_token_and_everything_else_does():
    assert protocol.ACKS_COUNT_AGAINST_RATE is False
    assert not protocol.counts_against_rate(protocol.ACK)
    assert protocol.counts_against_rate(None)  # a binary frame: keystrokes
    assert protocol.counts_against_rate(protocol.RESIZE)
    assert protocol.counts_against_rate("ping")
    assert protocol.counts_against_rate("")  # not JSON, or no type


class FakeTerminal:
    def __init__(self, ended_reason=""):
        self.sizes = []
        self.ended_reason = ended_reason

    async def resize(self, *, cols, rows):
        self.sizes.append((cols, rows))

    async def read(self, n):
        return b""  # the shell, or the console stream, is gone


def bridged_consumer():
    """A TerminalConsumer as connect() leaves it, minus the sandbox and the socket."""
    consumer = TerminalConsumer()
    consumer.scope = {"user": SimpleNamespace(username="alice"), "path": "/ws/test/"}
    consumer.session = SimpleNamespace(pk="s1")
    consumer.terminal = FakeTerminal()
    consumer.recorder = Recorder.disabled()
    consumer.broadcast = TabBroadcast("s1", 1, "test-channel", 80, 24)  # nobody watches
    consumer.unacked = protocol.HIGH_WATERMARK
    consumer.resume = SimpleNamespace(set=lambda: None)
    consumer.bucket = protocol.input_bucket()
    consumer.closed_with = []

    async def close(code=None):
        consumer.closed_with.append(code)

    consumer.close = close
    return consumer


async def test_the_consumer_never_limits_acks():
    consumer = bridged_consumer()
    ack = json.dumps({"type": protocol.ACK, "bytes": 1})
    for _ in range(protocol.INPUT_RATE_BURST * 3):
        await consumer.receive(text_data=ack)
    assert consumer.closed_with == []
    assert consumer.unacked == protocol.HIGH_WATERMARK - protocol.INPUT_RATE_BURST * 3


async def test_the_consumer_limits_resizes_with_the_protocols_bucket():
    consumer = bridged_consumer()
    resize = json.dumps({"type": protocol.RESIZE, "cols": 5000, "rows": 0})
    for _ in range(protocol.INPUT_RATE_BURST + 50):
        await consumer.receive(text_data=resize)
        if consumer.closed_with:
            break
    assert consumer.closed_with == [protocol.POLICY]
    burst = protocol.INPUT_RATE_BURST
    assert burst <= len(consumer.terminal.sizes) < burst + 50  # the burst, and a little refill
    assert consumer.terminal.sizes[0] == (protocol.MAX_COLS, protocol.MIN_ROWS)  # clamped


async def test_a_console_taken_by_another_window_closes_with_4012():
    consumer = bridged_consumer()
    consumer.terminal = FakeTerminal(ended_reason="taken")  # provisioning.libvirt.console.TAKEN
    consumer.resume = SimpleNamespace(wait=_ready)
    await consumer.pump_output()
    assert consumer.closed_with == [protocol.CONSOLE_TAKEN]


async def test_an_exited_shell_closes_normally(monkeypatch):
    async def still_running(session, settle=0.0):
        return None

    monkeypatch.setattr(sandbox, "ended", still_running)
    consumer = bridged_consumer()
    consumer.resume = SimpleNamespace(wait=_ready)
    await consumer.pump_output()
    assert consumer.closed_with == [1000]


async def _ready():
    return True
