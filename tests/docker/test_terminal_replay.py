"""The tmux control client (``provisioning.docker.terminal``): its protocol pieces without
an engine; the replay of a full-screen program and tabs opened at once, through the real
ASGI app."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from apps.sessions.engines import backend_for
from apps.sessions.specs import sandbox_of
from provisioning.docker.terminal import (
    ControlParser,
    PaneState,
    decode_output,
    history_command,
    keys_commands,
    replay_bytes,
    screen_commands,
)
from tests.docker.conftest import Screen, connect_terminal, start_lab

SHELL = PaneState.parse(b"%3 0 9 2 24 120 1 0 0 0 0 0 0 0 23")
VIM = PaneState.parse(b"%3 1 0 5 24 120 1 1 1 0 0 0 0 0 23")


def test_output_is_unescaped_byte_for_byte():
    assert decode_output(rb"a\033[1mb\015\012\134") == b"a\x1b[1mb\r\n\\"
    assert decode_output("中".encode()) == "中".encode()


def test_keys_are_sent_as_hex_including_utf8_in_short_commands():
    assert keys_commands(b"ls\r", "%3") == b"send-keys -t %3 -H 6c 73 0d\n"
    assert keys_commands("中".encode()) == b"send-keys -H e4 b8 ad\n"
    assert keys_commands(b"x" * 600).count(b"\n") == 3


def test_the_parser_keeps_our_replies_and_the_output_apart():
    parser = ControlParser()
    events = parser.feed(
        b"\x1bP1000p%begin 1 10 0\r\n%end 1 10 0\r\n%session-changed $1 t1\r\n"
        b"%output %3 hi\\015\\012\r\n%begin 2 11 1\r\nline one\r\n"
    )
    events += parser.feed(b"%end 2 11 1\r\n%begin 3 12 1\r\n%error 3 12 1\r\n%exit\r\n")
    assert events == [
        ("session",),
        ("output", "%3", b"hi\r\n"),
        ("reply", True, [b"line one"]),
        ("reply", False, []),
        ("exit", ""),
    ]


def test_a_shell_replays_history_then_screen_up_to_the_cursor():
    assert history_command(SHELL) == "capture-pane -p -e -J -S -120 -E -1"
    assert history_command(PaneState.parse(b"%3 0 0 0 24 0 1 0 0 0 0 0 0 0 23")) is None
    assert screen_commands(SHELL) == ["capture-pane -p -e -J -S 0 -E 2"]
    out = replay_bytes(SHELL, [b"1", b"2"], [[b"3", b"$ ls", b"$"]])
    assert out == b"\x1b[0m1\r\n\x1b[0m2\r\n\x1b[0m3\r\n\x1b[0m$ ls\r\n\x1b[0m$\x1b[0m\x1b[10G"
    assert b"\x1b[2J" not in out  # nothing erased: the history stays in order


def test_a_full_screen_program_gets_the_alternate_screen_and_its_modes_back():
    out = replay_bytes(VIM, [b"old"], [[b"$ vim"], [b"text", b"~", b"~"]])
    normal, alternate = out.split(b"\x1b[?1049h")
    assert normal == b"\x1b[0mold\r\n\x1b[0m$ vim\x1b[0m"
    assert b"\x1b[2;1H~" in alternate and b"\x1b[3;1H~" in alternate
    assert alternate.endswith(b"\x1b[6;1H\x1b[?1h\x1b=")  # cursor, then DECCKM and DECKPAM


@pytest.mark.docker
@pytest.mark.django_db(transaction=True)
async def test_vim_comes_back_on_its_screen_after_a_reconnect(alice, hello_lab):
    session = await start_lab(alice, hello_lab)
    first = Screen(await connect_terminal(session, alice, rows=12))
    await first.until(b"# ")
    await first.type("seq 1 40 | sed s/^/line-/; vim\r")
    await first.until(b"~")
    await first.communicator.disconnect()
    second = Screen(await connect_terminal(session, alice, rows=12))
    await second.until(b"~")
    history, _, screen = second.data.partition(b"\x1b[?1049h")
    assert history.count(b"line-1\r\n") == 1 and b"line-40" in history
    assert screen.count(b"~") >= 5
    await second.type(":q!\r")
    await second.until(b"# ")
    await second.communicator.disconnect()


@pytest.mark.docker
@pytest.mark.django_db(transaction=True)
async def test_terminals_opened_at_once_on_new_tabs_all_reach_their_shell(alice, hello_lab):
    """Several windows opening the same new tabs at the same moment (a class reloading at
    once): none loses the race to create the tab's tmux session."""
    session = await start_lab(alice, hello_lab)
    backend = await backend_for(session.backend)
    box = await database_sync_to_async(sandbox_of)(session)
    terminals = await asyncio.gather(
        *(backend.open_terminal(box, tab=1 + i % 4, cols=80, rows=24) for i in range(16))
    )
    try:
        for i, terminal in enumerate(terminals):
            await terminal.write(f"echo together-{i}-$((6*7))\r".encode())
            seen = b""
            async with asyncio.timeout(20):
                while f"together-{i}-42".encode() not in seen:
                    chunk = await terminal.read()
                    assert chunk, f"terminal {i} ended: {seen[-200:]!r}"
                    seen += chunk
    finally:
        await asyncio.gather(*(terminal.close() for terminal in terminals))
