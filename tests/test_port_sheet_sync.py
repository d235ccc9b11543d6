"""port_sheet_sync: the rows, one write only when changed, bounded 429 backoff, errors that say what to do."""

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import gspread
import psutil
import pytest
import requests
from google_setup import SPREADSHEET_ID, write_config, write_credential
from prometheus_client import CollectorRegistry

from orchestrator import config
from orchestrator.config import ServiceConfig
from orchestrator.jobs import port_sheet_sync
from orchestrator.jobs.port_sheet_sync import Socket
from orchestrator.scheduler import Scheduler
from orchestrator.store import Store
from simulators.google import GoogleSimulator

NOW = datetime(2026, 5, 13, 16, 0, tzinfo=UTC)
# The host's real sockets change as other tests run; the in-process runs use a fixed set.
SOCKETS = [Socket(8080, "tcp", "node"), Socket(9741, "tcp", "jada-agent")]


@pytest.fixture
def sim() -> Iterator[GoogleSimulator]:
    with GoogleSimulator() as simulator:
        simulator.add_spreadsheet(SPREADSHEET_ID)
        yield simulator


def run_job(
    tmp_path: Path, sim: GoogleSimulator, seconds: float = 15, **kwargs: str
) -> port_sheet_sync.JobResult:
    cfg = config.load(write_config(tmp_path, sim, **kwargs), environ={})
    return port_sheet_sync.run(
        cfg, cfg.jobs["port_sheet_sync"], time.monotonic() + seconds, sockets=lambda: SOCKETS
    )


def api_error(status: int) -> gspread.exceptions.APIError:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"error": {"code": status, "message": "m", "status": "S"}}).encode()
    return gspread.exceptions.APIError(response)


def test_rows_merge_configured_services_with_listening_sockets() -> None:
    services = [
        ServiceConfig("e-signature", 8081, owner="task 7", deployed_at="2026-05-12T17:30:00Z"),
        ServiceConfig("crew-pages", 8080, owner="task 12", deployed_at="2026-05-10T09:00:00Z"),
    ]
    sockets = [Socket(8080, "tcp", "node"), Socket(22, "tcp", "sshd"), Socket(8080, "tcp", "node")]
    assert port_sheet_sync.build_rows(services, sockets, NOW) == [
        ["updated_at", "2026-05-13T16:00:00Z"],
        ["name", "port", "protocol", "process", "owner", "deployed_at", "status"],
        ["crew-pages", "8080", "tcp", "node", "task 12", "2026-05-10T09:00:00Z", "listening"],
        ["e-signature", "8081", "tcp", "", "task 7", "2026-05-12T17:30:00Z", "not listening"],
        ["", "22", "tcp", "sshd", "", "", "listening, not configured"],
    ]


def test_listening_sockets_include_one_this_process_opened() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        found = [s for s in port_sheet_sync.listening_sockets() if s.port == port]
    assert found == [Socket(port, "tcp", psutil.Process().name())]


def test_content_change_ignores_the_updated_at_row() -> None:
    old = [["updated_at", "2026-05-13T15:30:00Z"], ["name"], ["a", "1", ""]]
    assert not port_sheet_sync.content_changed(
        old, [["updated_at", "2026-05-13T16:00:00Z"], ["name"], ["a", "1"]]
    )
    assert port_sheet_sync.content_changed(old, [["updated_at", "x"], ["name"], ["a", "2"]])


def test_padding_blanks_rows_and_columns_left_over_from_the_last_write() -> None:
    grid = port_sheet_sync.padded([["a"], ["b"]], [["x"] * 8, ["y"], ["z"]])
    assert grid == [["a"] + [""] * 7, ["b"] + [""] * 7, [""] * 8]


def test_backoff_retries_429_then_succeeds() -> None:
    answers = [api_error(429), api_error(429), "done"]
    clock = [0.0]
    sleeps: list[float] = []

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    assert port_sheet_sync.with_backoff(call, 100.0, clock=lambda: clock[0], sleep=sleep) == "done"
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_backoff_gives_up_before_the_deadline_instead_of_retrying_forever() -> None:
    clock = [0.0]

    def call() -> None:
        raise api_error(429)

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    with pytest.raises(port_sheet_sync.SyncError, match="kept answering HTTP 429"):
        port_sheet_sync.with_backoff(call, 20.0, clock=lambda: clock[0], sleep=sleep)
    assert clock[0] < 20.0


def test_backoff_does_not_retry_a_403() -> None:
    def call() -> None:
        raise api_error(403)

    with pytest.raises(gspread.exceptions.APIError):
        port_sheet_sync.with_backoff(call, 100.0, sleep=lambda s: pytest.fail("slept on a 403"))


def test_sync_writes_the_rows_in_one_batch_then_only_when_changed(
    tmp_path: Path, sim: GoogleSimulator
) -> None:
    write_credential(tmp_path, sim.new_authorized_user())
    result = run_job(tmp_path, sim)
    assert (result.result, result.credential_ok) == ("success", {"google": True})
    rows = sim.values(SPREADSHEET_ID, "ports")
    assert rows[0][0] == "updated_at"
    assert rows[1:] == [
        ["name", "port", "protocol", "process", "owner", "deployed_at", "status"],
        ["crew-pages", "8080", "tcp", "node", "task 12", "2026-05-10T09:00:00Z", "listening"],
        ["e-signature", "8081", "tcp", "", "task 7", "2026-05-12T17:30:00Z", "not listening"],
        ["", "9741", "tcp", "jada-agent", "", "", "listening, not configured"],
    ]
    assert result.detail == "3 rows written"
    assert sim.write_count == 1

    again = run_job(tmp_path, sim)
    assert again.detail.endswith("rows unchanged, nothing written")
    assert sim.write_count == 1


def test_sync_with_a_service_account_key(tmp_path: Path, sim: GoogleSimulator) -> None:
    write_credential(tmp_path, sim.new_service_account())
    assert run_job(tmp_path, sim).result == "success"


def test_429s_are_backed_off_within_the_job_time(tmp_path: Path, sim: GoogleSimulator) -> None:
    write_credential(tmp_path, sim.new_authorized_user())
    sim.set_scenario(sheets="429", times=2)
    assert run_job(tmp_path, sim).result == "success"
    sim.set_scenario(sheets="429")
    result = run_job(tmp_path, sim, seconds=2)
    assert result.result == "failure"
    assert "kept answering HTTP 429 (RESOURCE_EXHAUSTED) until the job's time budget ran out" in result.detail


def test_403_says_whom_to_share_the_spreadsheet_with(tmp_path: Path, sim: GoogleSimulator) -> None:
    info = sim.new_service_account("sync@jada.iam.gserviceaccount.com")
    write_credential(tmp_path, info)
    sim.set_scenario(sheets="403")
    result = run_job(tmp_path, sim)
    assert result.detail == (
        f"permission denied on spreadsheet {SPREADSHEET_ID} (HTTP 403);"
        f" share spreadsheet {SPREADSHEET_ID} with sync@jada.iam.gserviceaccount.com as Editor"
    )
    assert result.credential_ok == {"google": True}


def test_spreadsheet_that_does_not_exist(tmp_path: Path, sim: GoogleSimulator) -> None:
    write_credential(tmp_path, sim.new_authorized_user())
    result = run_job(tmp_path, sim, spreadsheet_id="1DoesNotExist")
    assert result.result == "failure"
    assert result.detail.startswith("spreadsheet 1DoesNotExist not found (HTTP 404)")
    assert f"check jobs.port_sheet_sync.spreadsheet_id in {tmp_path / 'config.toml'}" in result.detail


def test_missing_worksheet_is_named(tmp_path: Path, sim: GoogleSimulator) -> None:
    write_credential(tmp_path, sim.new_authorized_user())
    result = run_job(tmp_path, sim, worksheet="Ports 2026")
    assert result.detail.startswith(f"no worksheet named 'Ports 2026' in spreadsheet {SPREADSHEET_ID}")


def test_bad_credential_file_fails_this_job_only(tmp_path: Path, sim: GoogleSimulator) -> None:
    write_credential(tmp_path, sim.new_authorized_user()).write_text('{"type": "authorized_user", "cli')
    result = run_job(tmp_path, sim)
    assert result.result == "failure"
    assert result.credential_ok == {"google": False}
    assert "not valid JSON" in result.detail


def test_insecure_file_is_used_and_reported(tmp_path: Path, sim: GoogleSimulator) -> None:
    path = write_credential(tmp_path, sim.new_authorized_user(), mode=0o644)
    result = run_job(tmp_path, sim)
    assert result.result == "success"
    assert result.credential_file_insecure == {"google": True}
    assert result.warnings == (
        f"credentials file {path} is mode 0644, readable by others; run chmod 600 {path}",
    )


TOKEN_SCENARIOS = [
    ("invalid_grant", "authorized_user", ("400", "invalid_grant", False)),
    ("invalid_client", "authorized_user", ("401", "invalid_client", False)),
    ("500", "authorized_user", ("500", "internal_failure", True)),
    ("503", "authorized_user", ("503", "temporarily_unavailable", True)),
    ("html", "authorized_user", ("502", "unknown", False)),
    ("hang", "authorized_user", ("none", "none", True)),
    ("clock_skew", "service_account", ("400", "invalid_grant", False)),
]


@pytest.mark.parametrize(
    ("scenario", "kind", "expected"), TOKEN_SCENARIOS, ids=[s[0] for s in TOKEN_SCENARIOS]
)
def test_each_token_scenario_ends_classified_within_the_job_timeout(
    tmp_path: Path, sim: GoogleSimulator, scenario: str, kind: str, expected: tuple[str, str, bool]
) -> None:
    info = sim.new_authorized_user() if kind == "authorized_user" else sim.new_service_account()
    write_credential(tmp_path, info)
    sim.set_scenario(token=scenario)
    cfg = config.load(write_config(tmp_path, sim, timeout=8), environ={})
    with Store(cfg.store_path) as store:
        # Through the real child process: a result of "timeout" would mean it was not bounded.
        outcome = Scheduler(cfg, store, CollectorRegistry()).run_once("port_sheet_sync")
    assert outcome.result == "failure"
    error = outcome.job_result.token_error
    assert error is not None
    assert (error.status_code, error.oauth_error, error.retryable) == expected
    assert outcome.job_result.credential_ok == {"google": False}
