"""The HTTP endpoint: /metrics, /healthz, the status page, and the page's rendering."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_daemon import http_get

from orchestrator.metrics import Metrics
from orchestrator.status import NeedsYouLine, SessionLine, StatusReport, gather
from orchestrator.store import Store
from orchestrator.web import StatusServer, render_page

MAY_13 = 1778630400.0  # 2026-05-13T00:00:00Z


def report(**changes: object) -> StatusReport:
    base = StatusReport(
        now=MAY_13 + 14 * 3600,
        day="2026-05-13",
        sessions_used=3,
        daily_limit=5,
        turn_limit=30,
        sessions=(
            SessionLine(1, 1, "Refactor the page generator", MAY_13, 30, "max_turns", 1),
            SessionLine(2, 2, "E-signature <blockers>", MAY_13 + 120, 4, "completed", 0),
            SessionLine(3, 1, "Refactor the page generator", MAY_13 + 300, 7, None, None),
        ),
        queue={"queued": 1, "running": 1, "needs_you": 1, "done": 1, "failed": 0, "cancelled": 0},
        needs_you=(NeedsYouLine(3, "Question from task 2", "Which provider & why?", 2, 14 * 3600 - 130),),
    )
    return StatusReport(**{**base.__dict__, **changes})


def test_page_shows_budget_sessions_queue_and_needs_you() -> None:
    page = render_page(report())
    assert '<meta http-equiv="refresh" content="30">' in page
    assert "Sessions today (2026-05-13 UTC): 3/5" in page
    assert "<td>00:00</td><td>1</td><td>Refactor the page generator</td><td>30/30</td>" in page
    assert "max_turns (exit code 1)" in page
    assert "<td class='running'>running</td>" in page
    assert "<tr><td>needs_you</td><td>1</td></tr>" in page
    assert "<td>Which provider &amp; why?</td><td>13h 57m</td>" in page


def test_page_escapes_task_text() -> None:
    assert "E-signature &lt;blockers&gt;" in render_page(report())


def test_page_says_when_nothing_happened_yet() -> None:
    page = render_page(report(sessions=(), needs_you=(), sessions_used=0))
    assert "No session yet today." in page
    assert "Nothing waits for you." in page


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store, list[tuple[bool, str]]]]:
    store = Store(tmp_path / "jada.db")
    metrics = Metrics(30, 5, snapshot=store.snapshot)
    health = [(True, "ok: idle")]
    server = StatusServer(
        "127.0.0.1",
        0,
        metrics=metrics.exposition,
        health=lambda: health[0],
        report=lambda: gather(store, 5, 30),
    )
    server.start()
    host, port = server.address
    yield f"http://{host}:{port}", store, health
    server.stop()
    store.close()


def test_metrics_endpoint_serves_the_registry(served: tuple[str, Store, list]) -> None:
    base, store, _ = served
    store.add_task("a", "a")
    status, body = http_get(f"{base}/metrics")
    assert status == 200
    assert 'jada_agent_tasks{state="queued"} 1.0' in body


def test_healthz_is_503_with_the_reason_when_unhealthy(served: tuple[str, Store, list]) -> None:
    base, _, health = served
    assert http_get(f"{base}/healthz") == (200, "ok: idle\n")
    health[0] = (False, "daemon loop stalled for 95s")
    assert http_get(f"{base}/healthz") == (503, "daemon loop stalled for 95s\n")


def test_status_page_is_served_from_the_store(served: tuple[str, Store, list]) -> None:
    base, store, _ = served
    store.request_human(store.add_task("E-signature", "x"), "Which provider?")
    status, page = http_get(f"{base}/")
    assert status == 200
    assert "Which provider?" in page


def test_unknown_path_is_404(served: tuple[str, Store, list]) -> None:
    base, _, _ = served
    assert http_get(f"{base}/admin")[0] == 404


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is installed by scripts/bootstrap")
def test_a_real_browser_renders_the_status_page(served: tuple[str, Store, list], tmp_path: Path) -> None:
    base, store, _ = served
    parent = store.add_task("E-signature", "x")
    store.start_session(parent, day_limit=5)
    store.request_human(parent, "Which signing provider?")
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--dump-dom",
            f"{base}/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "<title>jada-agent status</title>" in dom
    assert re.search(r'<h2 id="sessions">Sessions today \(\d{4}-\d\d-\d\d UTC\): 1/5</h2>', dom)
    assert '<td class="running">running</td>' in dom
    assert "<td>Which signing provider?</td>" in dom
