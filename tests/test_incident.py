"""The seed's incident, reproduced: an expired refresh token, syncs failing every 30 minutes.

This time each failure is counted, classified and logged readably, credential_ok drops to 0,
and `jada-agent auth google` fixes it in one command. No secret shows up anywhere.
"""

import io
import json
import subprocess
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import requests
from freezegun import freeze_time
from google_setup import SPREADSHEET_ID, write_config, write_credential
from prometheus_client import CollectorRegistry, generate_latest

from orchestrator import config
from orchestrator.scheduler import Scheduler
from orchestrator.store import Store
from simulators.google import GoogleSimulator

EXPIRED = "1//0expired-refresh-token-from-may"
TOKEN_ERROR = "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked."
ERROR_LABELS = {
    "credential": "google",
    "status_code": "400",
    "oauth_error": "invalid_grant",
    "retryable": "false",
}


def sync_at(scheduler: Scheduler, when: str) -> list:
    """Let the scheduler start the due run at ``when``, wait for the child, reap it."""
    with freeze_time(when):
        assert scheduler.tick(time.time()) == []
        assert scheduler.running == ["port_sheet_sync"]
        scheduler.wait(timeout=60)
        return scheduler.tick(time.time())


def reauthenticate(cfg_path: Path, client: dict[str, str], sim: GoogleSimulator) -> str:
    """Run `jada-agent auth google` in paste mode, approving in the simulator's consent page."""
    secrets_file = cfg_path.parent / "client.json"
    client_config = {**client, "auth_uri": sim.auth_uri, "redirect_uris": ["http://localhost"]}
    secrets_file.write_text(json.dumps({"installed": client_config}))
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "orchestrator", "--config", str(cfg_path), "auth", "google"),
            *("--client-secrets", str(secrets_file), "--no-browser"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = next(line.strip() for line in process.stdout if line.startswith("http://"))
        location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        assert urllib.parse.urlsplit(location).hostname == "127.0.0.1"
        rest, _ = process.communicate(location + "\n", timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, rest
    return url + "\n" + rest


def test_expired_token_is_caught_and_fixed_by_auth_google(tmp_path: Path, logs: io.StringIO) -> None:
    with GoogleSimulator() as sim:
        sim.add_spreadsheet(SPREADSHEET_ID)
        info = sim.new_authorized_user(refresh_token=EXPIRED)
        write_credential(tmp_path, info)
        sim.revoke(EXPIRED)  # it expired: Google now answers 400 invalid_grant
        cfg_path = write_config(tmp_path, sim)
        cfg = config.load(cfg_path, environ={})
        registry = CollectorRegistry()

        with Store(cfg.store_path) as store:
            with freeze_time("2026-05-13 14:30:00"):
                scheduler = Scheduler(cfg, store, registry, now=time.time())
            # Start-up found the file sane; it has not been refreshed yet, so no verdict.
            assert registry.get_sample_value("jada_agent_credential_ok", {"credential": "google"}) is None
            outcomes = [
                *sync_at(scheduler, "2026-05-13 14:30:00"),
                *sync_at(scheduler, "2026-05-13 15:00:00"),
                *sync_at(scheduler, "2026-05-13 15:30:00"),
            ]
            assert [o.result for o in outcomes] == ["failure"] * 3
            assert registry.get_sample_value("jada_agent_token_refresh_errors_total", ERROR_LABELS) == 3
            assert registry.get_sample_value("jada_agent_credential_ok", {"credential": "google"}) == 0
            text = logs.getvalue()
            token_lines = [line for line in text.splitlines() if TOKEN_ERROR in line]
            assert len(token_lines) == 3
            for stamp in ("14:30:00", "15:00:00", "15:30:00"):
                assert (
                    f"[port-sheet] sync failed at 2026-05-13T{stamp}Z: token refresh failed: HTTP 400"
                    " invalid_grant: Token has been expired or revoked." in text
                )
            for field in (
                "JADA_EVENT=token_error",
                "JADA_COMPONENT=port-sheet",
                "JADA_STATUS_CODE=400",
                "JADA_OAUTH_ERROR=invalid_grant",
                "JADA_RETRYABLE=false",
            ):
                assert all(field in line for line in token_lines)

            # The seed's "What's next", as one command; then the next 30-minute run.
            client = {k: info[k] for k in ("client_id", "client_secret", "token_uri")}
            command_output = reauthenticate(cfg_path, client, sim)
            [fixed] = sync_at(scheduler, "2026-05-13 16:00:00")
            assert fixed.result == "success"
            assert registry.get_sample_value("jada_agent_credential_ok", {"credential": "google"}) == 1
            assert (
                registry.get_sample_value(
                    "jada_agent_job_last_success_timestamp_seconds", {"job_name": "port_sheet_sync"}
                )
                == datetime(2026, 5, 13, 16, 0, tzinfo=UTC).timestamp()
            )
            metrics_text = generate_latest(registry).decode()

        rows = sim.values(SPREADSHEET_ID, "ports")
        assert rows[1][:2] == ["name", "port"]
        assert rows[2][:2] == ["crew-pages", "8080"]

        new_refresh_token = json.loads((tmp_path / "secrets" / "google.json").read_text())["refresh_token"]
        assert sim.access_tokens  # the successful run was issued one: it must not leak either
        secrets = [EXPIRED, new_refresh_token, info["client_secret"], *sim.access_tokens]
        captured = logs.getvalue() + metrics_text + command_output + fixed.job_result.detail
        for secret in secrets:
            assert secret not in captured
