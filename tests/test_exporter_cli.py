"""The ``jada-exporter`` program, run as a real process: serving, stopping, and bad setups."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from journalfixtures import JOURNAL_REMOTE, entry, write_journal

from exporter.cli import build_collectors, build_parser

EXPORTER = [sys.executable, "-m", "exporter"]
# Logs go to stderr, where the test reads them, even on a host with a journal socket.
ENV = {**os.environ, "JADA_JOURNAL_SOCKET": "/nonexistent/journal/socket"}


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXPORTER, *args], capture_output=True, text=True, env=ENV, timeout=timeout)


def wait_for_line(
    process: subprocess.Popen[str], pattern: str, deadline_seconds: float = 30
) -> re.Match[str]:
    """Read the process's stderr until a line matches, failing at the deadline."""
    assert process.stderr is not None
    deadline = time.monotonic() + deadline_seconds
    seen = []
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            if found := re.search(pattern, line):
                return found
    raise AssertionError(f"no line matching {pattern!r} in {seen!r}")


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    if not JOURNAL_REMOTE.exists():
        pytest.skip("systemd-journal-remote is installed by scripts/bootstrap")
    write_journal(
        tmp_path / "journal", [entry("[port-sheet] sync failed at 2026-05-13T14:30:00Z", priority="3")]
    )
    process = subprocess.Popen(
        [
            *EXPORTER,
            "--web.listen-address=127.0.0.1:0",
            f"--journal.directory={tmp_path / 'journal'}",
            f"--journal.state-file={tmp_path / 'state.json'}",
            "--journal.read-back=all",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def test_the_exporter_serves_metrics_and_stops_cleanly_on_sigterm(exporter: subprocess.Popen[str]) -> None:
    url = wait_for_line(exporter, r"listening on (http://127\.0\.0\.1:\d+)").group(1)

    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        page = response.read().decode()
    assert 'jada_journal_sync_failures_total{component="port-sheet"} 1.0' in page
    assert 'jada_exporter_collector_success{collector="journal"} 1.0' in page
    assert 'jada_exporter_collector_success{collector="host"} 1.0' in page
    assert "process_resident_memory_bytes" in page
    with urllib.request.urlopen(f"{url}/", timeout=30) as response:
        assert b"jada-exporter" in response.read()

    exporter.send_signal(signal.SIGTERM)
    assert exporter.wait(timeout=30) == 0


def test_a_missing_web_config_exits_2_naming_the_file(tmp_path: Path) -> None:
    done = run(f"--web.config.file={tmp_path}/web.yml")
    assert done.returncode == 2
    assert f"{tmp_path}/web.yml: cannot be read" in done.stderr


def test_a_bad_listen_address_exits_2() -> None:
    done = run("--web.listen-address=localhost")
    assert done.returncode == 2
    assert "is not host:port" in done.stderr


def test_a_port_in_use_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(f"--web.listen-address=127.0.0.1:{port}", "--no-collector.journal")
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_lightsail_without_an_instance_name_exits_2() -> None:
    done = run("--collector.lightsail", "--lightsail.region=us-east-1")
    assert done.returncode == 2
    assert "--lightsail.instance-name" in done.stderr


def test_a_broken_rules_file_exits_2_naming_the_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules:\n  - name: deploys\n    metric: jada_journal_deploys_total\n    regex: '(unclosed'\n"
    )
    done = run(f"--rules.file={rules}")
    assert done.returncode == 2
    assert str(rules) in done.stderr and "deploys" in done.stderr


def test_rules_check_passes_a_good_file_and_fails_a_broken_one(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(
        "rules:\n  - name: deploys\n    metric: jada_journal_deploys_total\n    regex: '^\\[deploy\\] done'\n"
    )
    broken = tmp_path / "broken.yml"
    broken.write_text("rules:\n  - name: deploys\n    metric: jada_journal_deploys_total\n    bogus: 1\n")

    ok = run(f"--rules.check={good}")
    assert ok.returncode == 0, ok.stderr
    assert f"{good}: SUCCESS" in ok.stdout
    failed = run(f"--rules.check={broken}")
    assert failed.returncode == 1
    assert "deploys" in failed.stderr and "bogus" in failed.stderr


def test_collector_flags_switch_collectors_on_and_off() -> None:
    def names(*argv: str) -> list[str]:
        return [collector.name for collector in build_collectors(build_parser().parse_args(argv))]

    assert names() == ["journal", "host", "unit"]
    assert names("--no-collector.journal", "--no-collector.unit") == ["host"]
    assert names(
        "--no-collector.host",
        "--collector.lightsail",
        "--lightsail.instance-name=jada-agent",
        "--lightsail.region=us-east-1",
    ) == ["journal", "unit", "lightsail"]
