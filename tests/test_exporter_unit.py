"""The systemd unit collector: ``systemctl show`` and /proc parsing, and life without systemd."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.collector import CollectorError, ExporterCollector, PermanentCollectorError
from exporter.unit import (
    ACTIVE_STATES,
    ProcessUsage,
    UnitCollector,
    UnitStatus,
    parse_proc_stat,
    parse_show,
    parse_timestamp,
)

# Captured from `systemctl show --timestamp=us+utc --property=... jada-agent.service`.
SHOW_RUNNING = """\
LoadState=loaded
ActiveState=active
SubState=running
NRestarts=3
MainPID=4242
ActiveEnterTimestamp=Sun 2026-05-10 08:15:02.123456 UTC
"""
SHOW_CRASHLOOPING = """\
LoadState=loaded
ActiveState=activating
SubState=auto-restart
NRestarts=17
MainPID=0
ActiveEnterTimestamp=
"""
# The command name may hold spaces and parentheses; utime 250, stime 50, rss 12800 pages.
PROC_STAT = (
    "4242 (python3 (jada) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 250 50 0 0 20 0 3 0 1234 "
    "300000000 12800 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
)
STARTED = 1778400902.123456


def fake_systemctl(tmp_path: Path, stdout: str, exit_code: int = 0, stderr: str = "") -> Path:
    """Write an executable that answers like systemctl and records its arguments."""
    script = tmp_path / "systemctl"
    (tmp_path / "stdout").write_text(stdout)
    (tmp_path / "stderr").write_text(stderr)
    script.write_text(
        f'#!/bin/sh\necho "$@" > {tmp_path}/args\n'
        f"cat {tmp_path}/stdout\ncat {tmp_path}/stderr >&2\nexit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def proc_tree(tmp_path: Path, pid: int = 4242) -> Path:
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "stat").write_text(PROC_STAT)
    return proc


def scrape(*collectors: object) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ExporterCollector(list(collectors)))  # type: ignore[arg-type]
    return registry


def test_show_output_of_a_running_unit_parses() -> None:
    assert parse_show(SHOW_RUNNING) == UnitStatus("active", "running", 3, 4242, STARTED)


def test_show_output_of_a_crashlooping_unit_parses_without_start_time() -> None:
    assert parse_show(SHOW_CRASHLOOPING) == UnitStatus("activating", "auto-restart", 17, 0, None)


def test_show_output_without_states_is_an_error() -> None:
    with pytest.raises(ValueError, match="ActiveState"):
        parse_show("LoadState=loaded\n")


def test_timestamps_parse_with_and_without_microseconds() -> None:
    assert parse_timestamp("Sun 2026-05-10 08:15:02.123456 UTC") == STARTED
    assert parse_timestamp("Sun 2026-05-10 08:15:02 UTC") == 1778400902.0
    assert parse_timestamp("") is None
    assert parse_timestamp("n/a") is None
    with pytest.raises(ValueError, match="unrecognized"):
        parse_timestamp("yesterday")


def test_proc_stat_gives_cpu_seconds_and_resident_bytes() -> None:
    assert parse_proc_stat(PROC_STAT, ticks_per_second=100, page_size=4096) == ProcessUsage(3.0, 12800 * 4096)


def test_a_running_unit_becomes_unit_metrics(tmp_path: Path) -> None:
    collector = UnitCollector(
        systemctl=[str(fake_systemctl(tmp_path, SHOW_RUNNING))], proc=proc_tree(tmp_path)
    )
    registry = scrape(collector)

    unit = {"unit": "jada-agent.service"}
    for state in ACTIVE_STATES:
        expected = 1 if state == "active" else 0
        assert registry.get_sample_value("jada_unit_state", {**unit, "state": state}) == expected
    assert registry.get_sample_value("jada_unit_sub_state", {**unit, "sub_state": "running"}) == 1
    assert registry.get_sample_value("jada_unit_sub_state", {**unit, "sub_state": "auto-restart"}) == 0
    assert registry.get_sample_value("jada_unit_restarts_total", unit) == 3
    assert registry.get_sample_value("jada_unit_start_time_seconds", unit) == STARTED
    ticks = os.sysconf("SC_CLK_TCK")
    assert registry.get_sample_value("jada_unit_cpu_seconds_total", unit) == 300 / ticks
    assert registry.get_sample_value("jada_unit_memory_rss_bytes", unit) == 12800 * os.sysconf("SC_PAGE_SIZE")
    assert registry.get_sample_value("jada_exporter_collector_success", {"collector": "unit"}) == 1
    args = (tmp_path / "args").read_text().split()
    assert args[0] == "show" and args[-2:] == ["--", "jada-agent.service"]


def test_a_crashlooping_unit_has_no_process_metrics(tmp_path: Path) -> None:
    collector = UnitCollector(systemctl=[str(fake_systemctl(tmp_path, SHOW_CRASHLOOPING))], proc=tmp_path)
    registry = scrape(collector)

    unit = {"unit": "jada-agent.service"}
    assert registry.get_sample_value("jada_unit_state", {**unit, "state": "activating"}) == 1
    assert registry.get_sample_value("jada_unit_sub_state", {**unit, "sub_state": "auto-restart"}) == 1
    assert registry.get_sample_value("jada_unit_restarts_total", unit) == 17
    assert registry.get_sample_value("jada_unit_start_time_seconds", unit) is None
    assert registry.get_sample_value("jada_unit_cpu_seconds_total", unit) is None


def test_a_main_process_gone_before_proc_is_read_is_no_failure(tmp_path: Path) -> None:
    collector = UnitCollector(
        systemctl=[str(fake_systemctl(tmp_path, SHOW_RUNNING))], proc=tmp_path / "empty"
    )
    registry = scrape(collector)

    assert registry.get_sample_value("jada_exporter_collector_success", {"collector": "unit"}) == 1
    assert registry.get_sample_value("jada_unit_memory_rss_bytes", {"unit": "jada-agent.service"}) is None


def test_systemctl_failing_for_another_reason_is_a_transient_error(tmp_path: Path) -> None:
    script = fake_systemctl(tmp_path, "", exit_code=4, stderr="Access denied")
    with pytest.raises(CollectorError, match="Access denied") as raised:
        list(UnitCollector(systemctl=[str(script)]).collect())
    assert not isinstance(raised.value, PermanentCollectorError)


def test_a_hung_systemctl_is_cut_off_by_the_timeout(tmp_path: Path) -> None:
    script = tmp_path / "systemctl"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    with pytest.raises(CollectorError, match=r"took longer than 0\.2s"):
        list(UnitCollector(systemctl=[str(script)], timeout=0.2).collect())


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd is running on this host")
def test_without_systemd_the_unit_collector_reports_failure_and_nothing_else_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert shutil.which("systemctl"), "systemctl is installed by scripts/bootstrap"
    registry = scrape(UnitCollector())

    with caplog.at_level(logging.INFO, logger="exporter"):
        samples = [
            [s for family in registry.collect() for s in family.samples if s.name.startswith("jada_unit_")]
            for _ in range(3)
        ]
    assert samples == [[], [], []]
    assert registry.get_sample_value("jada_exporter_collector_success", {"collector": "unit"}) == 0
    assert len(caplog.records) == 1
    assert "systemd is not running here" in caplog.records[0].getMessage()
