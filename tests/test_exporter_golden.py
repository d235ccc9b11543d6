"""The whole /metrics page from fixture inputs, compared with a golden file and linted by promtool.

Regenerate the golden file after an intended change with::

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_exporter_golden.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from journalfixtures import JOURNAL_REMOTE, entry, event, token_error_event, write_journal
from prometheus_client import CollectorRegistry
from test_exporter_lightsail import NOW, answer
from test_exporter_unit import SHOW_RUNNING, fake_systemctl, proc_tree

from exporter.collector import ExporterCollector
from exporter.host import Filesystem, HostCollector, HostSnapshot
from exporter.journal import JournalCollector
from exporter.lightsail import SPECS, LightsailCollector
from exporter.rules import load_rule_set
from exporter.unit import UnitCollector
from exporter.web import ExporterServer

GOLDEN = Path(__file__).parent / "golden" / "exporter_metrics.prom"

HOST = HostSnapshot(
    cpu_seconds={
        "user": 5321.5,
        "nice": 0.0,
        "system": 1204.25,
        "idle": 901234.0,
        "iowait": 12.5,
        "steal": 0.5,
    },
    memory_total_bytes=958_443_520,
    memory_available_bytes=805_306_368,
    filesystems=[Filesystem("/", "ext4", 41_788_899_328, 35_131_039_744)],
    load=(0.08, 0.03, 0.01),
    boot_time_seconds=1778400000.0,
)
LIGHTSAIL = {
    "StatusCheckFailed": 0.0,
    "StatusCheckFailed_Instance": 0.0,
    "StatusCheckFailed_System": 0.0,
    "CPUUtilization": 0.65,
    "BurstCapacityPercentage": 100.0,
}
# The seed's lines, plus the structured events the orchestrator writes for the same things.
JOURNAL = [
    entry("[session] task 7 session 1 exited: max_turns after 30 turns (exit code 1)"),
    event(
        "[session] task 8 session 2 exited: completed after 12 turns (exit code 0)",
        "session_exit",
        task_id="8",
        session_id="2",
        exit_reason="completed",
        exit_code="0",
        turns="12",
    ),
    entry("[session] task 9 session 3 exited: max_turns after 30 turns (exit code 1)"),
    entry("[port-sheet] token error: HTTP Error 400: Bad Request", priority="3"),
    entry("[port-sheet] sync failed at 2026-05-13T14:30:00Z", priority="3"),
    entry("[port-sheet] sync failed at 2026-05-13T15:00:00Z", priority="3"),
    token_error_event(),
    event(
        "[port-sheet] sync failed at 2026-05-13T15:30:00Z: token refresh failed",
        "sync_failed",
        component="port-sheet",
        job_name="port_sheet_sync",
    ),
    entry("unrelated line from another unit", unit="nginx.service"),
]


def lightsail_collector(stubber: Stubber, client: Any) -> LightsailCollector:
    for spec in SPECS:
        stubber.add_response(
            "get_instance_metric_data", answer(spec.name, LIGHTSAIL[spec.name], spec.statistic, spec.unit)
        )
    return LightsailCollector(client, "jada-agent", clock=lambda: 0.0, now=lambda: NOW)


def render(tmp_path: Path) -> str:
    """Serve the fixture-fed collectors and return one scrape of /metrics."""
    write_journal(tmp_path / "journal", JOURNAL)
    journal = JournalCollector(
        load_rule_set(None),
        state_file=tmp_path / "state.json",
        directory=tmp_path / "journal",
        read_back="all",
    )
    # CPU seconds and RSS come from /proc/PID/stat in ticks and pages: 100 and 4096 on Linux x86-64.
    unit = UnitCollector(systemctl=[str(fake_systemctl(tmp_path, SHOW_RUNNING))], proc=proc_tree(tmp_path))
    client = boto3.client(
        "lightsail", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    registry = CollectorRegistry()
    with Stubber(client) as stubber:
        collectors = [journal, HostCollector(read=lambda: HOST), unit, lightsail_collector(stubber, client)]
        # A clock that never moves makes every duration 0: the page is the same on every run.
        registry.register(ExporterCollector(collectors, clock=lambda: 0.0))
        server = ExporterServer(("127.0.0.1", 0), registry)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        try:
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=30) as response:
                return response.read().decode()
        finally:
            server.shutdown()
            server.server_close()
            journal.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not JOURNAL_REMOTE.exists():
        pytest.skip("systemd-journal-remote is installed by scripts/bootstrap")
    return render(tmp_path_factory.mktemp("golden"))


def test_metrics_page_matches_the_golden_file(page: str) -> None:
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(page)
    assert page == GOLDEN.read_text(), "the /metrics page changed; if intended, rerun with UPDATE_GOLDEN=1"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is installed by scripts/bootstrap")
def test_the_metrics_page_passes_promtool_check_metrics(page: str) -> None:
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=page, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""
