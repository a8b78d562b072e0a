"""The student's terminal as text: scrollback in order (before and after a reload), a
full-screen program redrawn after a reload, the find bar, copy on selection, underscores,
descenders and Chinese wide characters drawn whole at device pixel ratios 1 and 2, and the
prompt inside the viewport. One lab start for the whole module."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import docker
import pytest

from tests.browser.test_student_flow import log_in
from tests.conftest import LIVE_SITE
from tests.docker.conftest import remove_test_sandboxes

pytestmark = [pytest.mark.browser, pytest.mark.docker]

LAB = "/courses/testcourse/basics/labs/hello/"
#: The terminal's buffer as lines of text, oldest first, and where the viewport is.
BUFFER_JS = """() => {
  const t = document.querySelector('.terminal-pane').terminalConnection.term;
  const b = t.buffer.active, lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return {lines, viewportY: b.viewportY, baseY: b.baseY, cursorY: b.cursorY, type: b.type,
          rows: t.rows, cols: t.cols};
}"""


@pytest.fixture(scope="module")
def lab_page(browser, live_site):
    """One student's page with a running lab (device pixel ratio 1), shared by the tests."""
    client = docker.from_env()
    context = browser.new_context(viewport={"width": 1366, "height": 768}, device_scale_factor=1)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_site)
    page = context.new_page()
    log_in(page, live_site)
    page.goto(live_site + LAB)
    page.click("[data-action=start]")
    wait_for_prompt(page)
    yield page
    context.close()
    remove_test_sandboxes(client, LIVE_SITE)
    client.close()


def wait_for_prompt(page, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "document.querySelector('.terminal-pane') && "
        "document.querySelector('.terminal-pane').dataset.state === 'attached' && "
        "document.querySelector('.xterm-rows').innerText.includes('root@lab')",
        timeout=timeout,
    )


def run(page, command: str, until: str, timeout: float = 15_000) -> None:
    page.click(".xterm-screen")
    page.keyboard.type(command + "\n")
    wait_for_line(page, until, timeout)


def wait_for_line(page, text: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        """(text) => { const p = document.querySelector('.terminal-pane');
          if (!p || !p.terminalConnection) return false;
          const b = p.terminalConnection.term.buffer.active;
          for (let i = b.length - 1; i >= 0; i--)
            if (b.getLine(i).translateToString(true) === text) return true;
          return false; }""",
        arg=text,
        timeout=timeout,
    )


def numbered_run(lines: list[str], last: int) -> int:
    """How many of 1..last appear as consecutive lines, in order, ending at ``last``."""
    end = max(i for i, line in enumerate(lines) if line == str(last))
    n = 0
    while n < last and end - n >= 0 and lines[end - n] == str(last - n):
        n += 1
    return n


def reload(page) -> None:
    page.reload()
    wait_for_prompt(page)


def test_scrollback_holds_every_line_in_order_before_and_after_a_reload(lab_page):
    page = lab_page
    run(page, "clear; seq 1 3000; echo seq-done", "seq-done")
    buffer = page.evaluate(BUFFER_JS)
    assert numbered_run(buffer["lines"], 3000) == 3000  # 1..3000, nothing missing or doubled
    assert buffer["lines"].count("1500") == 1
    # The mouse wheel over the terminal brings line 1 back onto the screen.
    box = page.locator(".xterm-screen").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    first = buffer["lines"].index("1")
    for _ in range(10):
        page.mouse.wheel(0, -2000)
        page.wait_for_timeout(30)
    wheeled = page.evaluate(BUFFER_JS)["viewportY"]
    assert wheeled <= buffer["baseY"] - 10  # the wheel scrolls xterm.js back
    page.keyboard.press("Shift+PageUp")
    page.wait_for_timeout(100)
    assert page.evaluate(BUFFER_JS)["viewportY"] < wheeled  # and so does Shift+PgUp
    # Line 1 on screen (the rest of the way by the scrollbar's API, as wheeling 3,000
    # lines would take long): the rows show 1, 2, 3... as printed.
    page.evaluate(
        "(n) => document.querySelector('.terminal-pane').terminalConnection.term.scrollToLine(n)",
        first,
    )
    page.wait_for_timeout(200)  # the DOM rows follow the viewport at the next frame
    shown = [line.strip() for line in page.inner_text(".xterm-rows").split("\n")]
    start = shown.index("1")
    assert shown[start : start + 5] == ["1", "2", "3", "4", "5"]

    reload(page)
    wait_for_line(page, "seq-done")
    lines = page.evaluate(BUFFER_JS)["lines"]
    assert numbered_run(lines, 3000) == 3000
    assert lines.count("1500") == 1 and lines.count("seq-done") == 1


def test_vim_is_redrawn_after_a_reload(lab_page):
    page = lab_page
    page.click(".xterm-screen")
    page.keyboard.type("vim\n")
    page.wait_for_function(
        "document.querySelector('.xterm-rows').innerText.split('\\n')"
        ".filter(l => l.trim() === '~').length > 3",
        timeout=15_000,
    )
    page.reload()
    page.wait_for_function(
        "document.querySelector('.terminal-pane') && "
        "document.querySelector('.terminal-pane').dataset.state === 'attached' && "
        "document.querySelector('.xterm-rows').innerText.split('\\n')"
        ".filter(l => l.trim() === '~').length > 3",
        timeout=30_000,
    )
    assert page.evaluate(BUFFER_JS)["type"] == "alternate"
    page.click(".xterm-screen")
    page.keyboard.press("Escape")
    page.keyboard.type(":q!\n")
    run(page, "echo vim-$((1+1))-closed", "vim-2-closed")
    assert page.evaluate(BUFFER_JS)["type"] == "normal"


def test_the_find_bar_walks_the_matches_of_the_scrollback(lab_page):
    page = lab_page
    run(page, "clear; for i in 1 2 3; do echo needle-$i; seq 400; done; echo hay-done", "hay-done")
    page.keyboard.press("Control+Shift+F")
    bar = page.locator(".terminal-search")
    bar.wait_for(state="visible")
    assert page.evaluate("document.activeElement.classList.contains('terminal-search-input')")
    page.keyboard.type("needle-")
    count = page.locator(".terminal-search-count")
    # Typing finds the newest match first (output grows downwards) and counts them all.
    page.wait_for_function(
        "document.querySelector('.terminal-search-count').innerText.includes('3')"
    )
    assert numbers(count.inner_text()) == [3, 3]
    assert "needle-3" in visible_rows(page)
    page.keyboard.press("Enter")  # Enter goes up, to the older match
    page.wait_for_function(
        "document.querySelector('.terminal-search-count').innerText.match(/2\\D+3/)"
    )
    assert "needle-2" in visible_rows(page) and "needle-3" not in visible_rows(page)
    page.keyboard.press("Shift+Enter")  # and Shift+Enter back down
    page.wait_for_function(
        "document.querySelector('.terminal-search-count').innerText.match(/3\\D+3/)"
    )
    page.keyboard.press("Control+A")
    page.keyboard.type("no-such-text")
    page.wait_for_function("document.querySelector('.terminal-search').dataset.found === 'no'")
    # Esc closes the bar and gives the keyboard back to the shell.
    page.keyboard.press("Escape")
    bar.wait_for(state="hidden")
    page.keyboard.type("echo typed-$((40+2))\n")
    wait_for_line(page, "typed-42")


def test_a_selection_is_copied_to_the_clipboard(lab_page):
    page = lab_page
    run(page, "clear; echo copy-me-$((6*7))", "copy-me-42")
    page.evaluate("navigator.clipboard.writeText('')")
    buffer = page.evaluate(BUFFER_JS)
    row = buffer["lines"].index("copy-me-42") - buffer["viewportY"]
    box = page.locator(".xterm-screen").bounding_box()
    cell_w, cell_h = box["width"] / buffer["cols"], box["height"] / buffer["rows"]
    y = box["y"] + (row + 0.5) * cell_h
    page.mouse.move(box["x"] + 0.3 * cell_w, y)
    page.mouse.down()
    page.mouse.move(box["x"] + 10.7 * cell_w, y, steps=5)  # ten cells: "copy-me-42"
    page.mouse.up()
    page.wait_for_function("navigator.clipboard.readText().then((t) => t === 'copy-me-42')")


def test_underscores_descenders_and_chinese_are_drawn_whole(lab_page):
    """At device pixel ratio 1 and again at 2: the underscore of x86_64 and the tails of
    g, j, p, q, y are inside their rows, and a Chinese character covers both of its cells."""
    page = lab_page
    cdp = page.context.new_cdp_session(page)
    try:
        for ratio in (1, 2):
            cdp.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1366, "height": 768, "deviceScaleFactor": ratio, "mobile": False},
            )
            page.wait_for_timeout(300)  # xterm.js re-renders for the new ratio
            run(page, f"clear; echo x86_64; echo gjpqy; echo 汉字测试-{ratio}", f"汉字测试-{ratio}")
            assert_drawn_whole(page, cdp, ratio)
    finally:
        cdp.send("Emulation.clearDeviceMetricsOverride")
        cdp.detach()
        page.wait_for_timeout(300)


def assert_drawn_whole(page, cdp, ratio: int) -> None:
    buffer = page.evaluate(BUFFER_JS)
    box = page.locator(".xterm-screen").bounding_box()
    scroll = page.evaluate("[window.scrollX, window.scrollY]")
    cell_w, cell_h = box["width"] / buffer["cols"], box["height"] / buffer["rows"]

    def lit_in(row: int, col: float, width: float, top: float, height: float) -> int:
        # Through CDP, as Playwright's screenshots do not know of the emulated ratio; its
        # clip is in page coordinates, in CSS pixels, and the image in device pixels.
        clip = {
            "x": scroll[0] + box["x"] + col * cell_w + 1,
            "y": scroll[1] + box["y"] + (row + top) * cell_h,
            "width": max(1.0, width * cell_w - 2), "height": height * cell_h, "scale": 1,
        }  # fmt: skip
        shot = cdp.send("Page.captureScreenshot", {"format": "png", "clip": clip})
        return len(lit_pixels(decode_png(base64.b64decode(shot["data"]))))

    def row_of(text: str) -> int:
        return buffer["lines"].index(text) - buffer["viewportY"]

    stroke = max(3, int(cell_w * 0.5)) * ratio
    underscore = lit_in(row_of("x86_64"), 3, 1, 0.55, 0.45)
    assert underscore >= stroke, f"underscore invisible at {ratio}x: {underscore} lit pixels"
    tails = lit_in(row_of("gjpqy"), 0, 5, 0.72, 0.28)  # below the baseline
    assert tails >= 5 * stroke, f"descenders cut off at {ratio}x: {tails} lit pixels"
    chinese = row_of(f"汉字测试-{ratio}")
    # "汉" is two cells wide: ink in its left cell and in its right one, and the next
    # character starts two cells on (xterm.js's unicode 11 widths).
    assert lit_in(chinese, 0, 1, 0.1, 0.8) > stroke and lit_in(chinese, 1, 1, 0.1, 0.8) > stroke
    assert page.evaluate(
        """(row) => { const t = document.querySelector('.terminal-pane').terminalConnection.term;
          const line = t.buffer.active.getLine(row + t.buffer.active.viewportY);
          const cell = (i) => line.getCell(i);
          return [cell(0).getWidth(), cell(1).getWidth(), cell(2).getChars()]; }""",
        chinese,
    ) == [2, 0, "字"]


def lit_pixels(pixels: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Pixels clearly brighter than the terminal's background (#0d1117)."""
    background = (0x0D, 0x11, 0x17)
    return [p for p in pixels if sum(abs(a - b) for a, b in zip(p, background, strict=False)) > 90]


def numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def visible_rows(page) -> str:
    return page.inner_text(".xterm-rows")


@pytest.mark.parametrize("size", [(1366, 768), (390, 844)])
def test_the_prompt_row_is_inside_the_viewport(lab_page, size):
    page = lab_page
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(400)  # the terminal refits after a resize (debounced)
    run(page, f"clear; echo fits-{size[0]}", f"fits-{size[0]}")
    page.evaluate("window.scrollTo(0, 0)")
    buffer = page.evaluate(BUFFER_JS)
    box = page.locator(".xterm-screen").bounding_box()
    cell_h = box["height"] / buffer["rows"]
    bottom = box["y"] + (buffer["cursorY"] + 1) * cell_h
    assert box["y"] >= 0 and bottom <= size[1], f"prompt row ends at {bottom}px of {size[1]}"


def decode_png(data: bytes) -> list[tuple[int, ...]]:
    """The RGB(A) pixels of an 8-bit, non-interlaced PNG (what Chromium's screenshots are)."""
    pos, chunks, width = 8, [], 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, _, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    raw, stride = zlib.decompress(b"".join(chunks)), width * channels
    pixels, previous = [], bytearray(stride)
    for y in range(len(raw) // (stride + 1)):
        row = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, line = row[0], bytearray(row[1:])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels += [tuple(line[i : i + 3]) for i in range(0, stride, channels)]
        previous = line
    return pixels
