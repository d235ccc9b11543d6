"""`jada-agent doctor`: each check on plain data, then the whole audit as a command.

The command runs as a real process on the seed's situation (a real store, credential file
and job runs made by the real scheduler against the Google simulator, journal files
written by systemd-journal-remote) and on a healthy setup with a real daemon running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from google_setup import SPREADSHEET_ID, write_config, write_credential
from helpers_daemon import DaemonProcess, wait_for
from journalfixtures import entry, write_journal
from seed_situation import EXPIRED, seed_situation

from orchestrator import config
from orchestrator.doctor import (
    FAIL,
    OK,
    WARN,
    Check,
    Facts,
    HostInfo,
    JournalLine,
    JournalState,
    ProcessInfo,
    UnitState,
    check_daemon,
    check_host,
    check_job,
    check_journal,
    check_queue,
    check_service,
    check_sessions,
    daemon_config,
    overall,
    parse_systemctl_show,
    render_text,
)
from orchestrator.status import JobLine, NeedsYouLine, SessionLine, StatusReport
from orchestrator.store import STATES, JobRun, Store
from simulators.google import GoogleSimulator

NOW = 1778687100.0  # 2026-05-13T15:45:00Z
DAY = 1778630400.0  # 2026-05-13T00:00:00Z
GB = 1024**3
MB = 1024**2
HOST = HostInfo(1.0, 2, 0.1, 914 * MB, 770 * MB, "/var/lib/jada-agent", 39 * GB, 33 * GB)
PROCESS = ProcessInfo(4242, NOW - 11 * 86400, 0.0065 * 11 * 86400, 44 * MB, 3, "process scan")
REFRESH_FAILED = "token refresh failed: HTTP 400 invalid_grant: Token has been expired or revoked."


def facts(**changes: object) -> Facts:
    base = Facts(
        now=NOW,
        config_path="/etc/jada-agent/config.toml",
        systemd=False,
        unit=None,
        unit_error=None,
        process=PROCESS,
        host=HOST,
        report=None,
        store_error=None,
        running_sessions=0,
        runnable_task=False,
        credentials=(),
        journal=JournalState("the system journal"),
    )
    return replace(base, **changes)


def report(exits: list[str | None], needs_you: tuple[NeedsYouLine, ...] = ()) -> StatusReport:
    sessions = tuple(
        SessionLine(i + 1, 1, "task", DAY + i * 60, 30, reason, None) for i, reason in enumerate(exits)
    )
    queue = dict.fromkeys(STATES, 0)
    return StatusReport(NOW, "2026-05-13", len(exits), 5, 30, sessions, queue, needs_you)


def job(last_success: float | None, results: list[str]) -> JobLine:
    runs = tuple(
        JobRun(i, "port_sheet_sync", NOW - 60 - i * 1800, NOW - i * 1800, result, 0.4, REFRESH_FAILED, "")
        for i, result in enumerate(results)
    )
    return JobLine("port_sheet_sync", 1800, runs, last_success, NOW + 1740)


# Parsing


def test_systemctl_show_is_parsed() -> None:
    text = "ActiveState=active\nSubState=running\nMainPID=812\nNRestarts=2\n"
    assert parse_systemctl_show(text) == UnitState("active", "running", 812, 2)
    assert parse_systemctl_show("MainPID=\n") == UnitState("unknown", "unknown", 0, 0)


def test_daemon_config_finds_the_config_of_a_run_command_only() -> None:
    module = ["/usr/bin/python3", "-m", "orchestrator", "--config", "/etc/j/config.toml", "run"]
    assert daemon_config(module, {}) == "/etc/j/config.toml"
    assert (
        daemon_config(["/opt/venv/bin/jada-agent", "--config=cfg.toml", "run"], {}, "/srv") == "/srv/cfg.toml"
    )
    script = ["/usr/bin/python3", "/opt/venv/bin/jada-agent", "run"]
    assert daemon_config(script, {"JADA_AGENT_CONFIG": "/etc/other.toml"}) == "/etc/other.toml"
    assert daemon_config(script, {}) == "/etc/jada-agent/config.toml"
    session = [*module[:5], "session", "run", "3", "--session-id", "7", "--events-fd", "5"]
    assert daemon_config(session, {}) is None
    assert daemon_config(["/usr/bin/python3", "-m", "http.server", "run"], {}) is None


# The checks


def test_two_of_three_sessions_at_the_turn_limit_warn() -> None:
    check = check_sessions(report(["max_turns", "completed", "max_turns"]))
    assert check == Check(
        "sessions",
        WARN,
        "3 of 5 used today (2026-05-13 UTC): 2 max_turns, 1 completed; 2 of 3 ended at the 30-turn"
        " limit: split those tasks or narrow their prompts",
    )


@pytest.mark.parametrize(
    ("exits", "status"),
    [
        (["max_turns", "completed"], WARN),  # half of two
        (["max_turns", "completed", "completed"], OK),
        (["max_turns"], OK),  # one exit is too few to judge
        (["completed", None], OK),  # a running session has not ended
        (["completed", "error"], WARN),
    ],
)
def test_session_verdicts(exits: list[str | None], status: str) -> None:
    assert check_sessions(report(exits)).status == status


def test_question_waiting_over_four_hours_warns_with_the_answer_command() -> None:
    waiting = (NeedsYouLine(3, "Question from task 2", "Which provider?", 2, 5 * 3600),)
    check = check_queue(report([], waiting), running_sessions=0, runnable_task=False)
    assert check.status == WARN
    assert check.fix == "jada-agent task answer 3 'ANSWER'"
    assert "idle: no runnable task; oldest question waiting 5h 00m (task 3)" in check.message
    fresh = (NeedsYouLine(3, "Question from task 2", "Which provider?", 2, 600),)
    assert check_queue(report([], fresh), running_sessions=1, runnable_task=True).status == OK


def test_job_verdicts() -> None:
    stale = check_job(job(NOW - 6000, ["failure", "failure", "failure"]), NOW)
    assert stale.status == FAIL
    assert stale.message == (
        "last success 14:05 UTC, 1h 40m ago, more than 2 intervals of 30m plus 5m;"
        f" last run 15:44 UTC failure in 0.4s: {REFRESH_FAILED}"
    )
    assert check_job(job(NOW - 1900, ["failure", "success"]), NOW).status == WARN
    assert check_job(job(NOW - 100, ["success"]), NOW).status == OK
    assert check_job(job(None, ["failure"]), NOW).status == FAIL
    assert check_job(job(None, []), NOW) == Check("job port_sheet_sync", WARN, "has not run yet (every 30m)")


def test_service_without_systemd_is_unknown_but_ok_when_the_daemon_runs() -> None:
    check = check_service(facts())
    assert check == Check(
        "service",
        OK,
        "unit state unknown: systemd is not running on this host; `jada-agent run` is pid 4242"
        " (process scan), up 11d 0h",
    )
    down = check_service(facts(process=None))
    assert down.status == FAIL
    assert down.fix == "jada-agent --config /etc/jada-agent/config.toml run"


def test_service_under_systemd_follows_the_unit_state() -> None:
    active = facts(systemd=True, unit=UnitState("active", "running", 4242, 0))
    assert check_service(active).message == "jada-agent.service active (running), up 11d 0h, 0 restarts"
    failed = check_service(facts(systemd=True, unit=UnitState("failed", "failed", 0, 5), process=None))
    assert (failed.status, failed.fix) == (FAIL, "systemctl start jada-agent.service")
    assert check_service(facts(systemd=True, unit_error="Failed to connect to bus")).status == WARN


def test_daemon_resources_as_the_seed_measured_them() -> None:
    assert check_daemon(facts()) == Check(
        "daemon", OK, "pid 4242: CPU 0.65% average since start, memory 44 MB resident, 3 threads"
    )
    heavy = replace(PROCESS, rss_bytes=300 * MB)
    assert check_daemon(facts(process=heavy)).status == WARN


def test_host_verdicts_follow_the_alert_thresholds() -> None:
    assert check_host(HOST).message == (
        "CPU 1% of 2 cores (load 0.10), memory 144 MB used of 914 MB (84% available),"
        " disk 6.0 GB used of 39.0 GB (85% free) at /var/lib/jada-agent"
    )
    assert check_host(replace(HOST, cpu_percent=100.0)).status == OK
    assert check_host(replace(HOST, memory_available=80 * MB)).status == FAIL
    assert check_host(replace(HOST, disk_free=5 * GB)).status == WARN
    assert check_host(replace(HOST, disk_free=1 * GB)).status == FAIL


def test_journal_verdicts() -> None:
    unreadable = JournalState("the journal in /x", error="[Errno 2] No such file or directory")
    assert check_journal(unreadable, NOW).status == WARN
    assert check_journal(JournalState("the system journal"), NOW) == Check(
        "journal", OK, "no error lines from jada-agent in the system journal"
    )
    recent = JournalState("j", (JournalLine(NOW - 900, "[port-sheet] token error: HTTP 400"),))
    check = check_journal(recent, NOW)
    assert (check.status, check.details) == (
        WARN,
        ("2026-05-13T15:30:00Z [port-sheet] token error: HTTP 400",),
    )
    old = JournalState("j", (JournalLine(NOW - 3 * 86400, "[daemon] old"),))
    assert check_journal(old, NOW).status == OK


def test_overall_is_the_worst_and_text_shows_fixes_not_already_in_the_line() -> None:
    checks = [
        Check("a", OK, "fine"),
        Check("b", WARN, "hmm", fix="do x"),
        Check("c", FAIL, "bad -> run: y", "y"),
    ]
    assert overall(checks) == FAIL
    assert overall(checks[:2]) == WARN
    assert overall(checks[:1]) == OK
    assert render_text(checks) == "OK   a: fine\nWARN b: hmm\n     fix: do x\nFAIL c: bad -> run: y\n"


# The command


def doctor(cfg_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(cfg_path), "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def journal_usec(seconds: float) -> int:
    return int(seconds * 1_000_000)


def test_seed_situation_fails_on_the_credential_and_warns_on_the_turn_limit(tmp_path: Path) -> None:
    now = time.time()
    day = now - now % 86400
    with GoogleSimulator() as sim:
        _, cfg_path = seed_situation(tmp_path, sim, day, [now - 95 * 60 + i * 1800 for i in range(4)])
    journal = tmp_path / "journal"
    lines = [
        entry(
            "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked.",
            priority="3",
        ),
        entry("[job] port_sheet_sync finished: failure in 0.4s", priority="4"),
    ]
    write_journal(journal, lines, start_usec=journal_usec(now - 300))

    result = doctor(cfg_path, "--journal-directory", str(journal))
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout.splitlines()
    [credential] = [line for line in out if line.startswith("FAIL credential google: ")]
    assert credential.startswith(
        "FAIL credential google: HTTP 400 invalid_grant (Token has been expired or revoked.)"
    )
    assert credential.endswith(" UTC -> run: jada-agent auth google --client-secrets CLIENT.json")
    assert any(
        line.startswith("WARN sessions: 3 of 5 used today") and "2 of 3 ended at the 30-turn limit" in line
        for line in out
    )
    assert any(line.startswith("FAIL job port_sheet_sync: last success") for line in out)
    assert any(
        line.startswith("WARN journal: newest error line 5m ago (1 shown below): [port-sheet] token error")
        for line in out
    )
    assert EXPIRED not in result.stdout + result.stderr

    as_json = doctor(cfg_path, "--journal-directory", str(journal), "--json")
    assert as_json.returncode == 2
    data = json.loads(as_json.stdout)
    assert (data["status"], data["exit_code"]) == ("FAIL", 2)
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["credential google"]["status"] == "FAIL"
    assert checks["credential google"]["fix"] == "jada-agent auth google --client-secrets CLIENT.json"
    assert checks["sessions"]["status"] == "WARN"
    assert "2 of 3 ended at the 30-turn limit" in checks["sessions"]["message"]
    assert [c["name"] for c in data["checks"]] == [line.split(":")[0][5:] for line in out if line[:4].strip()]


def test_healthy_setup_with_a_running_daemon_exits_0(tmp_path: Path) -> None:
    with GoogleSimulator() as sim:
        sim.add_spreadsheet(SPREADSHEET_ID)
        write_credential(tmp_path, sim.new_authorized_user())
        cfg_path = write_config(tmp_path, sim)
        cfg = config.load(cfg_path, environ={})
        journal = tmp_path / "journal"
        write_journal(journal, [entry("[daemon] started")], start_usec=journal_usec(time.time() - 60))
        # Logs to stderr, not to a journald the host may run: this test reads its own journal.
        env = {"JADA_JOURNAL_SOCKET": str(tmp_path / "no-journal-socket")}
        with DaemonProcess(cfg_path, tmp_path / "daemon.log", env=env) as daemon:
            wait_for(lambda: cfg.store_path.exists(), "the daemon's store")
            with Store(cfg.store_path) as store:
                wait_for(lambda: store.last_job_success("port_sheet_sync"), "the first sync", timeout=60)
            result = doctor(cfg_path, "--journal-directory", str(journal))
            assert result.returncode == 0, result.stdout + result.stderr + daemon.log()
    out = result.stdout
    assert f"`jada-agent run` is pid {daemon.process.pid} (process scan)" in out
    assert "OK   credential google: authorized_user, mode 0600, last refresh ok at" in out
    assert "OK   sessions: 0 of 5 used today" in out
    assert "OK   queue: 0 queued, 0 running, 0 needs you, 0 done, 0 failed; idle: no runnable task" in out
    assert all(line.startswith(("OK ", "     ")) for line in out.splitlines()), out


def test_without_a_store_or_journal_it_reports_instead_of_crashing(tmp_path: Path) -> None:
    with GoogleSimulator() as sim:
        cfg_path = write_config(tmp_path, sim)
    result = doctor(cfg_path, "--journal-directory", str(tmp_path / "absent"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert f"FAIL store: no store at {tmp_path / 'state' / 'jada-agent.db'}" in out
    missing = tmp_path / "secrets" / "google.json"
    assert f"FAIL credential google: {missing}: missing -> run: jada-agent auth google" in out
    assert f"WARN journal: cannot read the journal in {tmp_path / 'absent'}: no journal files in" in out
    assert not (tmp_path / "state" / "jada-agent.db").exists()


def test_config_error_exits_2_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[orchestrator]\nmax_turns = 0\n")
    result = doctor(bad)
    assert result.returncode == 2
    assert f"{bad}: orchestrator.max_turns: must be greater than 0" in result.stderr
    assert os.path.exists(bad)
