"""Credential files: each bad file is a clear error naming the file and the fix."""

import json
import os
import stat
from pathlib import Path

import pytest

from orchestrator import credentials

AUTHORIZED_USER = {
    "type": "authorized_user",
    "client_id": "123.apps.googleusercontent.com",
    "client_secret": "GOCSPX-client-secret-value",
    "refresh_token": "1//refresh-token-value",
}


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def load(path: Path) -> credentials.CredentialFile:
    return credentials.load(path, "google", os.geteuid())


def test_authorized_user_file_loads_with_the_token_uri_override(tmp_path: Path) -> None:
    path = write(tmp_path / "google.json", json.dumps(AUTHORIZED_USER))
    credential = credentials.load(path, "google", os.geteuid(), token_uri="http://127.0.0.1:9/token")
    assert credential.kind == "authorized_user"
    assert credential.info["token_uri"] == "http://127.0.0.1:9/token"
    assert not credential.insecure
    assert "refresh-token-value" not in repr(credential)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ('{"type": "authorized_user", "client_id": "1", "client_se', "not valid JSON (line 1 column"),
        ("[1, 2]", "not a JSON object"),
        ('{"installed": {"client_id": "x"}}', "is an OAuth client-secrets file, not a credential"),
        ('{"type": "external_account"}', "type 'external_account' is not a kind jada-agent uses"),
        ('{"type": "service_account", "client_email": "a@b"}', "service_account file lacks private_key"),
        ('{"type": "authorized_user", "client_id": "1"}', "lacks client_secret, refresh_token"),
    ],
)
def test_bad_file_is_an_error_naming_file_problem_and_fix(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "google.json", text)
    with pytest.raises(credentials.CredentialError) as excinfo:
        load(path)
    message = str(excinfo.value)
    assert message.startswith(f"credentials file {path}: ")
    assert problem in message
    assert "jada-agent auth google" in message


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(credentials.CredentialError, match="missing; re-create it with: jada-agent auth"):
        load(tmp_path / "google.json")


def test_readable_by_others_is_still_used_with_a_chmod_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "google.json", json.dumps(AUTHORIZED_USER), mode=0o644)
    credential = load(path)
    assert credential.insecure
    assert credential.warnings == (
        f"credentials file {path} is mode 0644, readable by others; run chmod 600 {path}",
    )


def test_wrong_owner_is_reported_with_the_chown_to_run(tmp_path: Path) -> None:
    path = write(tmp_path / "google.json", json.dumps(AUTHORIZED_USER))
    credential = credentials.load(path, "google", owner_uid=65534)
    assert len(credential.warnings) == 1
    assert "not nobody; run chown nobody" in credential.warnings[0]


def test_write_atomic_creates_mode_0600_and_replaces_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "google.json"
    credentials.write_atomic(path, AUTHORIZED_USER)
    first_inode = path.stat().st_ino
    credentials.write_atomic(path, {**AUTHORIZED_USER, "refresh_token": "1//new"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["refresh_token"] == "1//new"
    assert path.stat().st_ino != first_inode  # replaced by rename, never rewritten in place
    assert [p.name for p in path.parent.iterdir()] == ["google.json"]
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
