"""Render a page in Debian's headless Chromium: the DOM after load as text, and a PNG screenshot.

Each call runs Chromium with a fresh profile in its own process group, and kills the group
afterwards so no renderer or helper outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from demo.processes import StackError, group_members

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Crashpad's handler detaches from the group and lingers; a test browser needs no crash reports.
    "--disable-breakpad",
    "--hide-scrollbars",
)
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
CELL_TAGS = frozenset({"td", "th"})
HIDDEN_TAGS = frozenset({"head", "script", "style", "noscript", "template"})


class BrowserError(StackError):
    """Chromium is missing, failed, or took too long; the message says which and how to fix it."""


@dataclass(frozen=True)
class Rendered:
    """What a page looked like once loaded: its DOM, the DOM's text, and the screenshot file."""

    html: str
    text: str
    screenshot: Path | None


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[list[str]] = [[]]
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden += 1
        elif tag in BLOCK_TAGS:
            self.lines.append([])
        elif tag in CELL_TAGS:
            self.lines[-1].append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in BLOCK_TAGS:
            self.lines.append([])

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.lines[-1].append(data)


def html_text(html: str) -> str:
    """Return the visible text of ``html``: one line per block element, whitespace collapsed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join("".join(parts).split()) for parts in parser.lines)
    return "\n".join(line for line in lines if line)


def render(
    url: str,
    screenshot: Path | None = None,
    window_size: tuple[int, int] = (1280, 900),
    timeout_seconds: float = 60.0,
    chromium: Path = CHROMIUM,
) -> Rendered:
    """Load ``url`` in headless Chromium; return its rendered DOM and text, saving a screenshot if asked."""
    if not chromium.exists():
        raise BrowserError(
            f"{chromium} is missing; install the Debian package chromium (scripts/bootstrap does)"
        )
    size = f"--window-size={window_size[0]},{window_size[1]}"
    html = _run(chromium, [size, "--dump-dom", url], timeout_seconds)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        _run(chromium, [size, f"--screenshot={screenshot.resolve()}", url], timeout_seconds)
        if not screenshot.exists():
            raise BrowserError(f"chromium exited without writing the screenshot {screenshot}")
    return Rendered(html, html_text(html), screenshot)


def _run(chromium: Path, args: list[str], timeout_seconds: float) -> str:
    with tempfile.TemporaryDirectory(prefix="jada-chromium-") as profile:
        argv = [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            raise BrowserError(f"chromium took over {timeout_seconds:.0f}s for {args[-1]}") from None
        finally:
            _kill_group(proc.pid)
    if proc.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-10:])
        raise BrowserError(f"chromium exited with code {proc.returncode} for {args[-1]}:\n{tail}")
    return stdout


def _kill_group(pgid: int) -> None:
    if group_members(pgid):
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
