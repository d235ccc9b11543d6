"""The demo's headless browser: real Chromium against a tiny local page."""

from __future__ import annotations

import functools
import struct
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from demo import browser
from demo.browser import BrowserError, html_text

PAGE = """<!doctype html>
<html><head><title>jada-agent</title><meta http-equiv="refresh" content="30">
<style>td { padding: 4px }</style></head>
<body>
<h1>jada-agent status</h1>
<p>Sessions today: <b>3</b> of 5</p>
<table><tr><th>session</th><th>exit</th></tr><tr><td>1</td><td>max_turns</td></tr></table>
<p id="js"></p>
<script>document.getElementById("js").textContent = "rendered by the browser";</script>
</body></html>
"""

needs_chromium = pytest.mark.skipif(not browser.CHROMIUM.exists(), reason="needs /usr/bin/chromium")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_text_has_one_line_per_block_and_no_head_or_script() -> None:
    assert html_text(PAGE) == ("jada-agent status\nSessions today: 3 of 5\nsession exit\n1 max_turns")


@needs_chromium
def test_rendered_text_includes_what_scripts_wrote_and_screenshot_is_a_png(site: str, tmp_path: Path) -> None:
    shot = tmp_path / "artifacts" / "page.png"
    rendered = browser.render(site, screenshot=shot, window_size=(800, 600))
    assert rendered.text.splitlines() == [
        "jada-agent status",
        "Sessions today: 3 of 5",
        "session exit",
        "1 max_turns",
        "rendered by the browser",
    ]
    assert rendered.screenshot == shot
    assert png_size(shot) == (800, 600)


def test_missing_chromium_says_which_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(BrowserError, match="install the Debian package chromium"):
        browser.render("http://127.0.0.1:1/", chromium=tmp_path / "chromium")
