"""`jada-agent auth google`: import a key or run the consent flow, store 0600, verify for real."""

import json
import stat
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from google_setup import SPREADSHEET_ID, write_config

from orchestrator import reauth
from simulators.google import GoogleSimulator

CLIENT_ID = "jada-desktop.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-desktop-client-secret"


@pytest.fixture
def sim() -> Iterator[GoogleSimulator]:
    with GoogleSimulator() as simulator:
        simulator.add_spreadsheet(SPREADSHEET_ID)
        simulator.add_client(CLIENT_ID, CLIENT_SECRET)
        yield simulator


def client_secrets(tmp_path: Path, sim: GoogleSimulator) -> Path:
    path = tmp_path / "client.json"
    path.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "auth_uri": sim.auth_uri,
                    "token_uri": sim.token_uri,
                    "redirect_uris": ["http://localhost"],
                }
            }
        )
    )
    return path


def auth(cfg: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(cfg), "auth", "google", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def start_consent(cfg: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start the consent flow and read the URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--config", str(cfg), "auth", "google", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("http://"):
            return process, line.strip()
    process.wait(timeout=10)
    pytest.fail(f"no consent URL printed; stderr: {process.stderr.read() if process.stderr else ''}")


def stored(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "secrets" / "google.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_text())


def test_service_account_key_is_stored_0600_and_verified(tmp_path: Path, sim: GoogleSimulator) -> None:
    key = sim.new_service_account("sync@jada.iam.gserviceaccount.com")
    key_path = tmp_path / "key.json"
    key_path.write_text(json.dumps(key))
    answer = auth(write_config(tmp_path, sim), "--service-account", str(key_path))
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines() == [
        f"stored {tmp_path}/secrets/google.json (service_account, mode 0600)",
        f"verified: sync@jada.iam.gserviceaccount.com refreshed an access token at {sim.token_uri}",
    ]
    assert stored(tmp_path)["private_key"] == key["private_key"]
    assert "PRIVATE KEY" not in answer.stdout + answer.stderr


def test_verify_sync_runs_the_job_once_and_prints_the_result(tmp_path: Path, sim: GoogleSimulator) -> None:
    key_path = tmp_path / "key.json"
    key_path.write_text(json.dumps(sim.new_service_account()))
    answer = auth(write_config(tmp_path, sim), "--service-account", str(key_path), "--verify-sync")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert answer.stdout.splitlines()[-1].startswith("port_sheet_sync: success in ")
    assert sim.values(SPREADSHEET_ID, "ports")[1][0] == "name"


def test_a_credential_the_token_endpoint_refuses_fails_verification(
    tmp_path: Path, sim: GoogleSimulator
) -> None:
    key_path = tmp_path / "key.json"
    key_path.write_text(json.dumps(sim.new_service_account()))
    sim.set_scenario(token="clock_skew")
    answer = auth(write_config(tmp_path, sim), "--service-account", str(key_path))
    assert answer.returncode == 1
    assert "verify failed: token error: HTTP 400 invalid_grant: Invalid JWT: Token must be" in answer.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty; pass a service-account key"),
        ('{"type": "service_account", "client_email": "a@b", "private_k', "not valid JSON (line 1 column"),
        (
            json.dumps(
                {"type": "authorized_user", "client_id": "i", "client_secret": "s", "refresh_token": "r"}
            ),
            "is an authorized_user file, not a service-account key",
        ),
    ],
    ids=["empty", "truncated", "wrong-kind"],
)
def test_bad_key_file_is_a_usage_error_naming_the_file(
    tmp_path: Path, sim: GoogleSimulator, text: str, message: str
) -> None:
    key_path = tmp_path / "key.json"
    key_path.write_text(text)
    answer = auth(write_config(tmp_path, sim), "--service-account", str(key_path))
    assert answer.returncode == 2
    assert answer.stderr.startswith(f"jada-agent auth google: {key_path}: ")
    assert message in answer.stderr
    assert not (tmp_path / "secrets" / "google.json").exists()


def test_client_secrets_without_an_installed_section(tmp_path: Path, sim: GoogleSimulator) -> None:
    path = tmp_path / "client.json"
    path.write_text(json.dumps(sim.new_service_account()))
    answer = auth(write_config(tmp_path, sim), "--client-secrets", str(path))
    assert answer.returncode == 2
    assert "no 'installed' section (that is a credential: use --service-account)" in answer.stderr


def test_loopback_consent_flow_stores_a_refresh_token(tmp_path: Path, sim: GoogleSimulator) -> None:
    cfg = write_config(tmp_path, sim)
    process, url = start_consent(cfg, "--client-secrets", str(client_secrets(tmp_path, sim)))
    try:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert url.startswith(sim.auth_uri) and query["redirect_uri"].startswith("http://127.0.0.1:")
        # What the browser does: follow the consent page's 302 back to the loopback server.
        answer = requests.get(url, timeout=10)
        assert "jada-agent is authorized" in answer.text
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, out + err
    info = stored(tmp_path)
    assert info["type"] == "authorized_user" and sim.refresh_tokens[info["refresh_token"]] == CLIENT_ID
    assert f"verified: the Google account that authorized OAuth client {CLIENT_ID} refreshed" in out
    assert CLIENT_SECRET not in out + err and info["refresh_token"] not in out + err


def test_paste_mode_reads_the_redirect_address_from_stdin(tmp_path: Path, sim: GoogleSimulator) -> None:
    cfg = write_config(tmp_path, sim)
    process, url = start_consent(cfg, "--client-secrets", str(client_secrets(tmp_path, sim)), "--no-browser")
    try:
        # The browser on the person's laptop lands on a loopback address that does not load.
        location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        assert location.startswith("http://127.0.0.1:1/?code=")
        out, err = process.communicate(location + "\n", timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, out + err
    assert stored(tmp_path)["type"] == "authorized_user"
    assert "verified: " in out


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("4/abc", "4/abc"),
        ("http://127.0.0.1:1/?code=4%2Fabc&state=s1&scope=x", "4/abc"),
        ("code=4/abc&state=s1", "4/abc"),
    ],
)
def test_code_from_a_pasted_answer(answer: str, code: str) -> None:
    assert reauth.code_from_answer(answer, "s1") == code


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "nothing was pasted"),
        ("http://127.0.0.1:1/?code=x&state=other", "state differs"),
        ("http://127.0.0.1:1/?error=access_denied&state=s1", "answered access_denied"),
    ],
)
def test_bad_pasted_answers_say_what_went_wrong(answer: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reauth.code_from_answer(answer, "s1")
