"""Shared set-up for the Google tests: a config pointing at the simulator, credential files."""

import json
from pathlib import Path
from typing import Any

from simulators.google import GoogleSimulator

SPREADSHEET_ID = "1PortSheetSim"


def write_config(
    tmp_path: Path,
    sim: GoogleSimulator,
    timeout: float = 20,
    interval: float = 1800,
    spreadsheet_id: str = SPREADSHEET_ID,
    worksheet: str = "ports",
    listen_address: str = "127.0.0.1:0",
) -> Path:
    """Write a config whose port_sheet_sync job talks to ``sim``; return its path."""
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[orchestrator]
state_dir = "{tmp_path / "state"}"
listen_address = "{listen_address}"
poll_interval_seconds = 0.2

[google]
secrets_dir = "{tmp_path / "secrets"}"
token_uri = "{sim.token_uri}"
sheets_endpoint = "{sim.url}"

[jobs.port_sheet_sync]
interval_seconds = {interval}
timeout_seconds = {timeout}
credential = "google"
spreadsheet_id = "{spreadsheet_id}"
worksheet = "{worksheet}"

[[services]]
name = "crew-pages"
port = 8080
owner = "task 12"
deployed_at = "2026-05-10T09:00:00Z"

[[services]]
name = "e-signature"
port = 8081
owner = "task 7"
deployed_at = "2026-05-12T17:30:00Z"
"""
    )
    return path


def write_credential(tmp_path: Path, info: dict[str, Any], mode: int = 0o600) -> Path:
    """Store ``info`` as the ``google`` credential with ``mode``."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700, exist_ok=True)
    path = secrets / "google.json"
    path.write_text(json.dumps(info))
    path.chmod(mode)
    return path
