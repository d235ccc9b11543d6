"""The status page: each job's last runs and each credential's health with the fix to run.

Pure parts (credential verdicts, schedules) are tested on plain data; the whole page is
rendered by a real headless Chromium against the web server on a real store holding the
seed's day, and the screenshot is kept in test-artifacts/status-page.png.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google_setup import SPREADSHEET_ID, write_config, write_credential
from helpers_daemon import DaemonProcess, http_get, wait_for
from seed_situation import EXPIRED, QUESTION, seed_situation

from demo import browser
from demo.processes import free_port
from orchestrator import config
from orchestrator.metrics import Metrics
from orchestrator.status import (
    FAIL,
    OK,
    WARN,
    CredentialFileState,
    JobLine,
    Problem,
    Refresh,
    StatusReport,
    credential_health,
    gather_config,
    last_refresh,
    next_due,
    split_fix,
)
from orchestrator.store import STATES, JobRun, Store
from orchestrator.tokenerror import TokenError
from orchestrator.web import StatusServer, render_page
from simulators.google import GoogleSimulator

MAY_13 = 1778630400.0  # 2026-05-13T00:00:00Z
AT_1530 = MAY_13 + 15.5 * 3600
PAGE_NOW = MAY_13 + 15.75 * 3600
SYNC_TIMES = [MAY_13 + 14 * 3600 + i * 1800 for i in range(4)]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SECRETS = Path("/etc/jada-agent/secrets")
GOOGLE = SECRETS / "google.json"
EXPIRED_GRANT = TokenError("google", "400", "invalid_grant", "Token has been expired or revoked.", False)


def file_state(**changes: object) -> CredentialFileState:
    base = CredentialFileState(GOOGLE, "authorized_user", 0o600)
    return CredentialFileState(**{**base.__dict__, **changes})


def run(started_at: float, report: dict | str, job: str = "port_sheet_sync", run_id: int = 1) -> JobRun:
    text = report if isinstance(report, str) else json.dumps(report)
    return JobRun(run_id, job, started_at, started_at + 1, "failure", 0.4, "", text)


# Credential verdicts


def test_expired_refresh_token_fails_with_the_auth_google_command() -> None:
    line = credential_health("google", file_state(), Refresh(AT_1530, False, EXPIRED_GRANT, ""))
    assert line.status == FAIL
    assert line.line() == (
        "FAIL google: HTTP 400 invalid_grant (Token has been expired or revoked.) at 15:30 UTC"
        " -> run: jada-agent auth google --client-secrets CLIENT.json"
    )


def test_service_account_and_named_credentials_get_their_own_command() -> None:
    service = credential_health(
        "sheets", file_state(kind="service_account"), Refresh(AT_1530, False, EXPIRED_GRANT, "")
    )
    assert service.problems[0].fix == "jada-agent auth google --credential sheets --service-account KEY.json"


def test_retryable_error_warns_without_a_command() -> None:
    timeout = TokenError("google", "none", "none", "read timed out", True)
    line = credential_health("google", file_state(), Refresh(AT_1530, False, timeout, ""))
    assert line.status == WARN
    assert line.problems == (
        Problem(
            WARN,
            "no answer from the token endpoint (read timed out) at 15:30 UTC;"
            " retryable, the next run tries again",
            None,
        ),
    )


def test_world_readable_file_warns_with_the_chmod() -> None:
    warning = f"credentials file {GOOGLE} is mode 0644, readable by others; run chmod 600 {GOOGLE}"
    line = credential_health(
        "google", file_state(mode=0o644, insecure=(split_fix(warning),)), Refresh(AT_1530, True, None, "")
    )
    assert line.status == WARN
    assert line.summary == (
        f"credentials file {GOOGLE} is mode 0644, readable by others -> run: chmod 600 {GOOGLE}"
    )


def test_failing_refresh_and_insecure_file_are_both_shown_and_fail_wins() -> None:
    insecure = (("credentials file is mode 0644", f"chmod 600 {GOOGLE}"),)
    line = credential_health(
        "google", file_state(mode=0o644, insecure=insecure), Refresh(AT_1530, False, EXPIRED_GRANT, "")
    )
    assert line.status == FAIL
    assert [p.status for p in line.problems] == [FAIL, WARN]
    assert line.summary.endswith(f"; credentials file is mode 0644 -> run: chmod 600 {GOOGLE}")


def test_missing_file_fails_naming_the_path_and_the_command() -> None:
    state = file_state(
        kind=None, mode=None, unusable=("missing", "re-create it with: jada-agent auth google ...")
    )
    line = credential_health("google", state, None)
    assert line.line() == (
        f"FAIL google: {GOOGLE}: missing -> run: jada-agent auth google --client-secrets CLIENT.json"
    )


def test_healthy_credential_says_its_mode_and_last_refresh() -> None:
    line = credential_health("google", file_state(), Refresh(AT_1530, True, None, "12 rows"))
    assert line.status == OK
    assert line.line() == "OK google: authorized_user, mode 0600, last refresh ok at 15:30 UTC"
    assert credential_health("google", file_state(), None).summary.endswith("no refresh recorded yet")


def test_file_replaced_after_the_failure_waits_for_the_next_run() -> None:
    state = file_state(modified_at=AT_1530 + 600)
    line = credential_health("google", state, Refresh(AT_1530, False, EXPIRED_GRANT, ""))
    assert line.line() == (
        "WARN google: refresh failed at 15:30 UTC, file replaced at 15:40 UTC; the next run verifies it"
    )
    older = file_state(modified_at=AT_1530 - 600)
    assert credential_health("google", older, Refresh(AT_1530, False, EXPIRED_GRANT, "")).status == FAIL


def test_split_fix_separates_the_command() -> None:
    assert split_fix("file x is mode 0644; run chmod 600 x") == ("file x is mode 0644", "chmod 600 x")
    assert split_fix("no command here") == ("no command here", "")


def test_last_refresh_takes_the_newest_verdict_on_that_credential() -> None:
    failed = {"token_error": EXPIRED_GRANT.as_dict(), "credential_ok": {"google": False}}
    runs = [
        run(MAY_13 + 100, {"credential_ok": {"google": True}}, run_id=1),
        run(MAY_13 + 200, failed, run_id=2),
        run(MAY_13 + 300, {"credential_ok": {"other": True}}, run_id=3),
        run(MAY_13 + 400, "{not json", run_id=4),
        run(MAY_13 + 500, "", run_id=5),
    ]
    assert last_refresh("google", runs) == Refresh(MAY_13 + 200, False, EXPIRED_GRANT, "")
    assert last_refresh("other", runs) == Refresh(MAY_13 + 300, True, None, "")
    assert last_refresh("absent", runs) is None


def test_next_run_is_an_interval_after_the_last_start_or_now() -> None:
    assert next_due(AT_1530, 1800, PAGE_NOW) == MAY_13 + 16 * 3600
    assert next_due(None, 1800, PAGE_NOW) == PAGE_NOW


# The page


def seed_report(**changes: object) -> StatusReport:
    base = StatusReport(PAGE_NOW, "2026-05-13", 3, 5, 30, (), dict.fromkeys(STATES, 0), ())
    return StatusReport(**{**base.__dict__, **changes})


def test_page_escapes_job_details_and_shows_the_fix_as_code() -> None:
    cfg_runs = (JobRun(1, "port_sheet_sync", AT_1530, AT_1530 + 1, "failure", 0.4, "bad <html> body", ""),)
    job = JobLine("port_sheet_sync", 1800, cfg_runs, None, AT_1530 + 1800)
    line = credential_health("google", file_state(), Refresh(AT_1530, False, EXPIRED_GRANT, ""))
    page = render_page(seed_report(jobs=(job,), credentials=(line,)))
    assert "<td>bad &lt;html&gt; body</td>" in page
    assert "<span class='badge FAIL'>FAIL</span>" in page
    assert "run: <code>jada-agent auth google --client-secrets CLIENT.json</code>" in page
    assert "every 30m, never succeeded, next run 16:00 UTC" in page


def test_page_needs_no_javascript_and_refreshes_itself() -> None:
    page = render_page(seed_report())
    assert "<script" not in page
    assert '<meta http-equiv="refresh" content="30">' in page


def test_a_running_daemon_serves_the_credential_failure_on_its_page(tmp_path: Path) -> None:
    with GoogleSimulator() as sim:
        sim.add_spreadsheet(SPREADSHEET_ID)
        write_credential(tmp_path, sim.new_authorized_user(refresh_token=EXPIRED))
        sim.revoke(EXPIRED)
        cfg_path = write_config(tmp_path, sim, listen_address=f"127.0.0.1:{free_port()}")
        cfg = config.load(cfg_path, environ={})
        env = {"JADA_JOURNAL_SOCKET": str(tmp_path / "no-journal-socket")}
        with DaemonProcess(cfg_path, tmp_path / "daemon.log", env=env):
            wait_for(lambda: cfg.store_path.exists(), "the daemon's store")
            with Store(cfg.store_path) as store:
                wait_for(lambda: store.last_job_runs("port_sheet_sync"), "the first sync", timeout=60)
            status, page = http_get(f"http://{cfg.listen_address}/")
    assert status == 200
    assert "<span class='badge FAIL'>FAIL</span></td><td>google</td>" in page
    assert "HTTP 400 invalid_grant (Token has been expired or revoked.)" in page
    assert "run: <code>jada-agent auth google --client-secrets CLIENT.json</code>" in page


def test_page_without_jobs_says_so() -> None:
    page = render_page(seed_report())
    assert "No scheduled job is enabled." in page
    assert "No job uses a credential." in page


@pytest.fixture
def seed_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with GoogleSimulator() as sim:
        cfg, cfg_path = seed_situation(tmp_path, sim, MAY_13, SYNC_TIMES)
    store = Store(cfg.store_path)
    metrics = Metrics(cfg.max_turns, cfg.daily_sessions, snapshot=store.snapshot)
    server = StatusServer(
        "127.0.0.1",
        0,
        metrics=metrics.exposition,
        health=lambda: (True, "ok"),
        report=lambda: gather_config(cfg, store, now=PAGE_NOW),
    )
    server.start()
    host, port = server.address
    try:
        yield f"http://{host}:{port}/", cfg_path
    finally:
        server.stop()
        store.close()


def test_status_command_prints_jobs_and_credentials(
    seed_server: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator import cli

    _, cfg_path = seed_server
    assert cli.main(["--config", str(cfg_path), "status"]) == 0
    out = capsys.readouterr().out
    assert "Job port_sheet_sync: every 30m, last success 14:00 UTC" in out
    assert "Credential FAIL google: HTTP 400 invalid_grant" in out
    assert EXPIRED not in out


@pytest.mark.skipif(not browser.CHROMIUM.exists(), reason="chromium is installed by scripts/bootstrap")
def test_chromium_renders_the_seed_day(seed_server: tuple[str, Path]) -> None:
    url, _ = seed_server
    shot = ARTIFACTS / "status-page.png"
    shot.unlink(missing_ok=True)
    rendered = browser.render(url, screenshot=shot, window_size=(1280, 1200))
    lines = rendered.text.splitlines()
    assert "3 of 5 sessions used today, 2 left; at most 30 turns a session." in lines
    assert "1 00:00 1 Refactor the page generator 30/30 max_turns (exit code 1)" in lines
    assert "2 00:02 2 Unblock e-signature and the crew page generator 12/30 completed (exit code 0)" in lines
    assert "3 00:05 1 Refactor the page generator 30/30 max_turns (exit code 1)" in lines
    assert f"3 2 Question from task 2 {QUESTION} 15h 42m" in lines
    assert "every 30m, last success 14:00 UTC (1h 44m ago), next run 16:00 UTC" in lines
    refresh_failed = "token refresh failed: HTTP 400 invalid_grant: Token has been expired or revoked."
    runs = [line.split()[:2] for line in lines if line.endswith(refresh_failed)]
    assert runs == [["15:30", "failure"], ["15:00", "failure"], ["14:30", "failure"]]
    assert [line.split()[:2] for line in lines if line.startswith("14:00 ")] == [["14:00", "success"]]
    assert (
        "FAIL google HTTP 400 invalid_grant (Token has been expired or revoked.) at 15:30 UTC"
        " → run: jada-agent auth google --client-secrets CLIENT.json"
    ) in lines
    assert lines[2:4] == [
        "FAIL credential google: run jada-agent auth google --client-secrets CLIENT.json",
        "1 question waiting for you, the oldest for 15h 42m",
    ]
    assert EXPIRED not in rendered.html
    assert shot.stat().st_size > 10_000
