"""port_sheet_sync: write the host's port allocations to a Google Sheet.

Rows are the configured services (name, port, protocol, owner, deployed_at) merged with the
host's listening sockets (port, protocol, process), marking configured ports that nothing
listens on and listening ports no service claims. The sheet is written in one batch, and only
when its content changed: the Sheets API allows 60 writes a minute per user.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import gspread
import psutil
import requests
from google.auth import exceptions as auth_exceptions

from orchestrator import credentials, googleclient, tokenerror
from orchestrator.config import Config, JobConfig, ServiceConfig
from orchestrator.jobs import FAILURE, SUCCESS, JobResult

HEADER = ("name", "port", "protocol", "process", "owner", "deployed_at", "status")
LISTENING = "listening"
NOT_LISTENING = "not listening"
UNKNOWN = "listening, not configured"
RETRY_STATUSES = (429, 500, 503)
DEFAULT_CREDENTIAL = "google"
DEFAULT_WORKSHEET = "ports"

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Socket:
    """A listening socket: port, protocol and the name of the process that holds it."""

    port: int
    protocol: str
    process: str


class SyncError(Exception):
    """A sync failure with a message that says what to do."""


def build_rows(
    services: Iterable[ServiceConfig], sockets: Iterable[Socket], updated_at: datetime
) -> list[list[str]]:
    """Merge configured services with listening sockets into the sheet's rows."""
    processes: dict[tuple[int, str], set[str]] = {}
    for sock in sockets:
        processes.setdefault((sock.port, sock.protocol), set()).add(sock.process)
    rows = []
    claimed = set()
    for service in sorted(services, key=lambda s: (s.port, s.protocol, s.name)):
        key = (service.port, service.protocol)
        claimed.add(key)
        names = processes.get(key)
        rows.append(
            [
                service.name,
                str(service.port),
                service.protocol,
                ", ".join(sorted(names)) if names else "",
                service.owner,
                service.deployed_at,
                LISTENING if names else NOT_LISTENING,
            ]
        )
    for (port, protocol), names in sorted(processes.items()):
        if (port, protocol) not in claimed:
            rows.append(["", str(port), protocol, ", ".join(sorted(names)), "", "", UNKNOWN])
    stamp = updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [["updated_at", stamp], list(HEADER), *rows]


def content_changed(existing: Sequence[Sequence[str]], rows: Sequence[Sequence[str]]) -> bool:
    """Tell whether the sheet differs from ``rows``, ignoring the updated_at row."""
    return _trim(existing[1:]) != _trim(rows[1:])


def _trim(grid: Sequence[Sequence[str]]) -> list[list[str]]:
    rows = [[str(cell) for cell in row] for row in grid]
    for row in rows:
        while row and row[-1] == "":
            row.pop()
    while rows and not rows[-1]:
        rows.pop()
    return rows


def padded(rows: list[list[str]], existing: Sequence[Sequence[str]]) -> list[list[str]]:
    """Blank out what the previous content had beyond the new rows, so one write replaces it."""
    width = max([len(HEADER), *(len(row) for row in existing)])
    grid = [row + [""] * (width - len(row)) for row in rows]
    grid.extend([""] * width for _ in range(len(existing) - len(rows)))
    return grid


def listening_sockets() -> list[Socket]:
    """List the host's listening TCP sockets and bound UDP sockets with their process names."""
    found = set()
    for conn in psutil.net_connections(kind="inet"):
        tcp = conn.type == 1  # socket.SOCK_STREAM
        if (tcp and conn.status != psutil.CONN_LISTEN) or (not tcp and conn.raddr):
            continue
        found.add(Socket(conn.laddr.port, "tcp" if tcp else "udp", _process_name(conn.pid)))
    return sorted(found)


def _process_name(pid: int | None) -> str:
    if pid is None:
        return "?"
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "?"


def with_backoff(
    call: Callable[[], T],
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``call``, retrying Sheets 429/5xx answers with jittered exponential backoff until ``deadline``."""
    wait = 1.0
    while True:
        try:
            return call()
        except gspread.exceptions.APIError as exc:
            if exc.code not in RETRY_STATUSES:
                raise
            pause = wait * random.uniform(0.5, 1.0)
            if clock() + pause >= deadline:
                raise SyncError(
                    f"Sheets API kept answering HTTP {exc.code} ({exc.error.get('status', '')})"
                    " until the job's time budget ran out; the next run will try again"
                ) from None
            sleep(pause)
            wait = min(wait * 2, 32.0)


def run(
    config: Config,
    job: JobConfig,
    deadline: float,
    sockets: Callable[[], list[Socket]] = listening_sockets,
) -> JobResult:
    """Sync the port sheet once, by ``deadline`` (a time.monotonic value)."""
    name = str(job.options.get("credential", DEFAULT_CREDENTIAL))
    spreadsheet_id = job.options.get("spreadsheet_id")
    worksheet = str(job.options.get("worksheet", DEFAULT_WORKSHEET))
    if not spreadsheet_id:
        return JobResult(
            FAILURE,
            f"{config.path}: jobs.{job.name}.spreadsheet_id is not set; add the ID from the sheet's URL",
        )
    path = credentials.credential_path(config.secrets_dir, name)
    try:
        credential = credentials.load(
            path, name, credentials.expected_owner(config.service_user), config.google_token_uri
        )
    except credentials.CredentialError as exc:
        return JobResult(FAILURE, str(exc), credential_ok={name: False})
    health = {
        "credential_file_insecure": {name: credential.insecure},
        "warnings": credential.warnings,
    }
    remaining = max(deadline - time.monotonic(), 0.5)
    transport = googleclient.TokenTransport(timeout=max(min(30.0, remaining / 3), 0.5))
    creds = googleclient.build(credential)
    token_error = googleclient.refresh(creds, transport, name)
    if token_error is not None:
        return JobResult(
            FAILURE,
            f"token refresh failed: {token_error.reason()}",
            token_error=token_error,
            credential_ok={name: False},
            **health,
        )
    client = gspread.Client(
        auth=creds, session=googleclient.session(creds, transport, config.google_sheets_endpoint)
    )
    client.set_timeout(max(min(30.0, deadline - time.monotonic()), 0.5))
    try:
        rows = build_rows(config.services, sockets(), datetime.now(UTC))
        detail = _sync(client, credential, spreadsheet_id, worksheet, rows, config, deadline)
    except SyncError as exc:
        return JobResult(FAILURE, str(exc), credential_ok={name: True}, **health)
    except (auth_exceptions.RefreshError, auth_exceptions.TransportError) as exc:
        # The Sheets API said 401 and the session's own refresh then failed.
        token_error = tokenerror.classify(exc, transport.last_status, name)
        return JobResult(
            FAILURE,
            f"token refresh failed: {token_error.reason()}",
            token_error=token_error,
            credential_ok={name: False},
            **health,
        )
    return JobResult(SUCCESS, detail, credential_ok={name: True}, **health)


def _sync(
    client: gspread.Client,
    credential: credentials.CredentialFile,
    spreadsheet_id: str,
    worksheet: str,
    rows: list[list[str]],
    config: Config,
    deadline: float,
) -> str:
    try:
        spreadsheet = with_backoff(lambda: client.open_by_key(spreadsheet_id), deadline)
        sheet = with_backoff(lambda: spreadsheet.worksheet(worksheet), deadline)
        existing = with_backoff(lambda: sheet.get_values(), deadline)
        if not content_changed(existing, rows):
            return f"{len(rows) - 2} rows unchanged, nothing written"
        body = {
            "valueInputOption": "RAW",
            "data": [{"range": f"{_quote(worksheet)}!A1", "values": padded(rows, existing)}],
        }
        with_backoff(lambda: spreadsheet.values_batch_update(body), deadline)
    except gspread.exceptions.SpreadsheetNotFound:
        raise SyncError(_not_found(spreadsheet_id, credential, config)) from None
    except PermissionError:
        # gspread's open_by_key turns a 403 into the builtin PermissionError.
        raise SyncError(_permission_denied(spreadsheet_id, credential)) from None
    except gspread.exceptions.WorksheetNotFound:
        raise SyncError(
            f"no worksheet named {worksheet!r} in spreadsheet {spreadsheet_id};"
            f" add it or set jobs.port_sheet_sync.worksheet in {config.path}"
        ) from None
    except gspread.exceptions.APIError as exc:
        if exc.code == 403:
            raise SyncError(_permission_denied(spreadsheet_id, credential)) from None
        if exc.code == 404:
            raise SyncError(_not_found(spreadsheet_id, credential, config)) from None
        raise SyncError(f"Sheets API answered HTTP {exc.code}: {_first_line(exc.error)}") from None
    except requests.RequestException as exc:
        raise SyncError(f"Sheets API unreachable: {_first_line(str(exc))}") from None
    return f"{len(rows) - 2} rows written"


def _not_found(spreadsheet_id: str, credential: credentials.CredentialFile, config: Config) -> str:
    return (
        f"spreadsheet {spreadsheet_id} not found (HTTP 404): it does not exist or is not shared with"
        f" {credential.principal}; check jobs.port_sheet_sync.spreadsheet_id in {config.path}"
    )


def _permission_denied(spreadsheet_id: str, credential: credentials.CredentialFile) -> str:
    return (
        f"permission denied on spreadsheet {spreadsheet_id} (HTTP 403);"
        f" share spreadsheet {spreadsheet_id} with {credential.principal} as Editor"
    )


def _quote(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _first_line(error: Any) -> str:
    message = error.get("message", "") if isinstance(error, dict) else str(error)
    return " ".join(str(message).split())[:200]
