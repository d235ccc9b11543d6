"""The scheduler: child per run, overlap skipped, timeout killed, cadence kept across a restart."""

import io
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from google_setup import SPREADSHEET_ID, write_config, write_credential
from helpers_daemon import DaemonProcess, http_get, wait_for
from prometheus_client import CollectorRegistry

from demo.processes import free_port
from orchestrator import config, jobs
from orchestrator.scheduler import Scheduler
from orchestrator.store import Store
from simulators.google import GoogleSimulator

T1430 = datetime(2026, 5, 13, 14, 30, tzinfo=UTC).timestamp()
JOB = "port_sheet_sync"
OK_LINE = json.dumps({"result": "success", "detail": "3 rows written", "token_error": None})
# A stand-in job child: waits for a gate file (or forever), then reports success.
FAKE_JOB = f"""
import os, sys, time
gate = os.environ.get("GATE")
while gate is None or not os.path.exists(gate):
    time.sleep(0.02)
print({OK_LINE!r})
"""


@pytest.fixture
def sim() -> Iterator[GoogleSimulator]:
    with GoogleSimulator() as simulator:
        simulator.add_spreadsheet(SPREADSHEET_ID)
        yield simulator


@pytest.fixture
def cfg(tmp_path: Path, sim: GoogleSimulator) -> config.Config:
    write_credential(tmp_path, sim.new_authorized_user())
    return config.load(write_config(tmp_path, sim, timeout=60), environ={})


def fake_command(tmp_path: Path, body: str = FAKE_JOB) -> list[str]:
    script = tmp_path / "fake_job.py"
    script.write_text(body)
    return [sys.executable, str(script)]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def finish(scheduler: Scheduler, at: float) -> list:
    scheduler.wait(timeout=30)
    return scheduler.tick(at)


def test_label_children_exist_at_zero_from_start_up(cfg: config.Config) -> None:
    registry = CollectorRegistry()
    with Store(cfg.store_path) as store:
        Scheduler(cfg, store, registry, now=T1430)
    for result in ("success", "failure", "timeout", "skipped"):
        assert sample(registry, "jada_agent_job_runs_total", job_name=JOB, result=result) == 0
    assert sample(registry, "jada_agent_job_interval_seconds", job_name=JOB) == 1800
    labels = {
        "credential": "google",
        "status_code": "400",
        "oauth_error": "invalid_grant",
        "retryable": "false",
    }
    assert sample(registry, "jada_agent_token_refresh_errors_total", **labels) == 0
    assert sample(registry, "jada_agent_job_last_success_timestamp_seconds", job_name=JOB) is None
    assert sample(registry, "jada_agent_credential_file_insecure", credential="google") == 0


def test_due_job_runs_as_a_child_and_its_result_is_counted(
    tmp_path: Path, cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    gate = tmp_path / "gate"
    gate.touch()
    monkeypatch.setenv("GATE", str(gate))
    with Store(cfg.store_path) as store:
        scheduler = Scheduler(cfg, store, registry, command=fake_command(tmp_path), now=T1430)
        assert scheduler.tick(T1430) == []
        assert scheduler.running == [JOB]
        [outcome] = finish(scheduler, T1430 + 2)
        assert (outcome.result, outcome.job_result.detail) == ("success", "3 rows written")
        [run] = store.last_job_runs(JOB)
        assert (run.started_at, run.result) == (T1430, "success")
        assert sample(registry, "jada_agent_job_last_success_timestamp_seconds", job_name=JOB) == T1430 + 2
    assert sample(registry, "jada_agent_job_runs_total", job_name=JOB, result="success") == 1
    assert sample(registry, "jada_agent_job_duration_seconds_count", job_name=JOB) == 1
    assert scheduler.next_due(JOB) == T1430 + 1800


def test_run_still_going_when_the_next_is_due_is_skipped_not_started_twice(
    tmp_path: Path, sim: GoogleSimulator, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A timeout longer than the interval is what lets a run overlap the next slot.
    cfg = config.load(write_config(tmp_path, sim, timeout=2400), environ={})
    registry = CollectorRegistry()
    gate = tmp_path / "gate"
    monkeypatch.setenv("GATE", str(gate))
    with Store(cfg.store_path) as store:
        scheduler = Scheduler(cfg, store, registry, command=fake_command(tmp_path), now=T1430)
        scheduler.tick(T1430)
        children = psutil.Process().children()
        [skipped] = scheduler.tick(T1430 + 1800)
        assert skipped.result == "skipped"
        assert psutil.Process().children() == children  # no second child
        gate.touch()
        [outcome] = finish(scheduler, T1430 + 1801)
        assert outcome.result == "success"
        assert scheduler.next_due(JOB) == T1430 + 3600
    assert sample(registry, "jada_agent_job_runs_total", job_name=JOB, result="skipped") == 1
    assert sample(registry, "jada_agent_job_runs_total", job_name=JOB, result="success") == 1
    assert (
        "[job] port_sheet_sync skipped at 2026-05-13T15:00:00Z: previous run still going" in logs.getvalue()
    )


def test_run_past_its_timeout_is_killed_and_counted(
    tmp_path: Path, cfg: config.Config, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    monkeypatch.delenv("GATE", raising=False)
    with Store(cfg.store_path) as store:
        scheduler = Scheduler(cfg, store, registry, command=fake_command(tmp_path), now=T1430)
        scheduler.tick(T1430)
        [child] = psutil.Process().children()
        assert scheduler.tick(T1430 + 59) == []
        [outcome] = scheduler.tick(T1430 + 61)
        assert (outcome.result, outcome.job_result.detail) == (
            "timeout",
            "timed out after 60s and was killed",
        )
        assert not child.is_running()
        assert store.last_job_runs(JOB)[0].result == "timeout"
    assert sample(registry, "jada_agent_job_runs_total", job_name=JOB, result="timeout") == 1
    assert "[port-sheet] sync failed at 2026-05-13T14:30:00Z: timed out after 60s" in logs.getvalue()


def test_cadence_continues_across_a_daemon_restart(
    tmp_path: Path, cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    monkeypatch.setenv("GATE", str(gate))
    command = fake_command(tmp_path)
    with Store(cfg.store_path) as store:
        first = Scheduler(cfg, store, CollectorRegistry(), command=command, now=T1430)
        first.tick(T1430)
        finish(first, T1430 + 1)
        first.shutdown()

        restarted = Scheduler(cfg, store, CollectorRegistry(), command=command, now=T1430 + 600)
        assert restarted.next_due(JOB) == T1430 + 1800
        restarted.tick(T1430 + 600)
        assert restarted.running == []
        restarted.tick(T1430 + 1800)
        assert restarted.running == [JOB]
        finish(restarted, T1430 + 1801)
        assert [r.started_at for r in store.last_job_runs(JOB)] == [T1430 + 1800, T1430]


def test_a_long_outage_gives_one_run_then_the_old_cadence_not_a_burst(
    tmp_path: Path, cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    monkeypatch.setenv("GATE", str(gate))
    back = T1430 + 5 * 3600 + 600  # 19:40, ten missed slots later
    with Store(cfg.store_path) as store:
        store.record_job_run(JOB, T1430, T1430 + 1, "success", 1.0, "")
        scheduler = Scheduler(cfg, store, CollectorRegistry(), command=fake_command(tmp_path), now=back)
        scheduler.tick(back)
        assert scheduler.running == [JOB]
        assert scheduler.next_due(JOB) == T1430 + 11 * 1800  # 20:00, on the 30-minute grid again
        finish(scheduler, back + 1)
        scheduler.tick(back + 60)
        assert scheduler.running == []
        assert len(store.last_job_runs(JOB)) == 2


def test_child_without_a_result_line_is_a_failure_that_shows_its_stderr(
    tmp_path: Path, cfg: config.Config
) -> None:
    body = "import sys\nprint('not json')\nprint('Traceback: boom', file=sys.stderr)\nsys.exit(3)\n"
    registry = CollectorRegistry()
    with Store(cfg.store_path) as store:
        scheduler = Scheduler(cfg, store, registry, command=fake_command(tmp_path, body), now=T1430)
        scheduler.tick(T1430)
        [outcome] = finish(scheduler, T1430 + 1)
    assert outcome.result == "failure"
    assert outcome.job_result.detail == "job child printed no result line (exit code 3): Traceback: boom"


def test_start_up_check_reports_a_missing_and_an_insecure_credential(
    tmp_path: Path, sim: GoogleSimulator, logs: io.StringIO
) -> None:
    cfg = config.load(write_config(tmp_path, sim), environ={})
    registry = CollectorRegistry()
    with Store(cfg.store_path) as store:
        Scheduler(cfg, store, registry, now=T1430)
        assert sample(registry, "jada_agent_credential_ok", credential="google") == 0
        assert f"credentials file {tmp_path}/secrets/google.json: missing" in logs.getvalue()

        path = write_credential(tmp_path, sim.new_authorized_user(), mode=0o640)
        registry = CollectorRegistry()
        Scheduler(cfg, store, registry, now=T1430)
    assert sample(registry, "jada_agent_credential_file_insecure", credential="google") == 1
    assert f"run chmod 600 {path}" in logs.getvalue()


def cli(cfg: config.Config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(cfg.path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_job_run_and_job_list_commands(tmp_path: Path, cfg: config.Config, sim: GoogleSimulator) -> None:
    ok = cli(cfg, "job", "run", JOB)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"{JOB}: success in ")
    assert sim.values(SPREADSHEET_ID, "ports")[1][0] == "name"

    sim.set_scenario(token="invalid_grant")
    failed = cli(cfg, "job", "run", JOB)
    assert failed.returncode == 1
    assert "token error: HTTP 400 invalid_grant: Token has been expired or revoked. (retryable: false)" in (
        failed.stdout
    )
    listing = cli(cfg, "job", "list")
    assert listing.returncode == 0
    assert f"{JOB:<20} yes" in listing.stdout and " failure, last success 20" in listing.stdout


def test_job_run_of_an_unknown_job_is_a_usage_error(cfg: config.Config) -> None:
    answer = cli(cfg, "job", "run", "nope")
    assert answer.returncode == 2
    assert "no job named 'nope'; known jobs: port_sheet_sync" in answer.stderr


def metrics_with(url: str, text: str) -> str:
    body = http_get(url)[1]
    return body if text in body else ""


def test_daemon_runs_the_job_and_exports_its_metrics_without_secrets(
    tmp_path: Path, sim: GoogleSimulator
) -> None:
    port = free_port()
    info = sim.new_authorized_user()
    write_credential(tmp_path, info)
    cfg_path = write_config(tmp_path, sim, interval=2, listen_address=f"127.0.0.1:{port}")
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    env = {"JADA_JOURNAL_SOCKET": str(tmp_path / "no-journal")}
    with DaemonProcess(cfg_path, tmp_path / "daemon.log", env=env) as daemon:
        success = 'jada_agent_job_runs_total{job_name="port_sheet_sync",result="success"} 1.0'
        wait_for(lambda: success in http_get(metrics_url)[1], "a successful run in /metrics")
        assert 'jada_agent_credential_ok{credential="google"} 1.0' in http_get(metrics_url)[1]
        sim.set_scenario(token="invalid_grant")
        error = (
            'jada_agent_token_refresh_errors_total{credential="google",oauth_error="invalid_grant",'
            'retryable="false",status_code="400"} 1.0'
        )
        body = wait_for(lambda: metrics_with(metrics_url, error), "a token error in /metrics")
        assert 'jada_agent_credential_ok{credential="google"} 0.0' in body
        check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        logged = daemon.log()
    assert "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked." in logged
    for secret in (info["refresh_token"], info["client_secret"], *sim.access_tokens):
        assert secret not in body + logged


def test_an_unknown_job_in_the_config_is_reported_and_not_run(
    tmp_path: Path, sim: GoogleSimulator, logs: io.StringIO
) -> None:
    path = write_config(tmp_path, sim)
    path.write_text(path.read_text() + "\n[jobs.backup]\ninterval_seconds = 60\n")
    cfg = config.load(path, environ={})
    with Store(cfg.store_path) as store:
        scheduler = Scheduler(cfg, store, CollectorRegistry(), now=T1430)
    assert list(scheduler.jobs) == [JOB]
    assert (
        "jobs.backup is not a job jada-agent knows; it will not run (known: port_sheet_sync)"
        in logs.getvalue()
    )


@pytest.mark.parametrize(
    ("stdout", "exit_code", "result", "detail"),
    [
        (OK_LINE + "\n", 0, "success", "3 rows written"),
        ("progress\n" + OK_LINE, 0, "success", "3 rows written"),
        (OK_LINE, 1, "failure", "3 rows written"),  # the exit code must agree with the line
        ('{"result": "maybe"}', 0, "failure", "job child printed no result line (exit code 0): boom"),
        ('{"result": "succ', 0, "failure", "job child printed no result line (exit code 0): boom"),
        ("", -9, "failure", "job child printed no result line (exit code -9): boom"),
    ],
)
def test_parse_result_line(stdout: str, exit_code: int, result: str, detail: str) -> None:
    parsed = jobs.parse_result(stdout, exit_code, "boom")
    assert (parsed.result, parsed.detail) == (result, detail)


def test_parse_result_keeps_the_token_error_and_ignores_malformed_flags() -> None:
    line = json.dumps(
        {
            "result": "failure",
            "detail": "token refresh failed",
            "token_error": {"credential": "google", "status_code": "400", "oauth_error": "invalid_grant"},
            "credential_ok": {"google": False, "bad": "yes"},
        }
    )
    parsed = jobs.parse_result(line, 1)
    assert parsed.token_error is not None and parsed.token_error.oauth_error == "invalid_grant"
    assert parsed.credential_ok == {"google": False}
