"""Real journal files for tests: entries written in export format, turned into a journal
file by systemd-journal-remote, and read back by libsystemd like any journal.

    path = write_journal(tmp_path / "journal", [entry("[port-sheet] sync failed at ...")])

Each call writes one new file in the directory; several calls make a multi-file journal,
as rotation does. Timestamps are filled in when an entry does not carry its own.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
BOOT_ID = "6a0f1c2b3d4e5f60718293a4b5c6d7e8"
UNIT = "jada-agent.service"
# 2026-05-13T14:00:00Z, the afternoon of the seed's incident.
START_USEC = int(datetime(2026, 5, 13, 14, 0, tzinfo=UTC).timestamp() * 1_000_000)
# The fixture boot, from which monotonic timestamps count: libsystemd orders the entries of
# one boot across files by them, so they must agree with the realtime ones.
BOOT_USEC = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
STEP_USEC = 1000

Fields = Mapping[str, str | bytes]


def entry(message: str | bytes | None, unit: str = UNIT, priority: str = "6", **fields: str | bytes) -> dict:
    """Return the fields of one entry as journald would store it for ``unit``."""
    result: dict[str, str | bytes] = {
        "_SYSTEMD_UNIT": unit,
        "PRIORITY": priority,
        "SYSLOG_IDENTIFIER": "jada-agent",
    }
    if message is not None:
        result["MESSAGE"] = message
    result.update(fields)
    return result


def event(message: str, event_name: str, **fields: str) -> dict:
    """Return an entry as ``orchestrator.log.event`` writes it (``JADA_*`` fields)."""
    jada = {f"JADA_{key.upper()}": value for key, value in fields.items()}
    return entry(message, JADA_EVENT=event_name, **jada)


def token_error_event(
    message: str = "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked.",
) -> dict:
    """Return the port-sheet sync's structured event for the seed's expired Google refresh token."""
    return event(
        message,
        "token_error",
        component="port-sheet",
        credential="google",
        status_code="400",
        oauth_error="invalid_grant",
        retryable="false",
    )


def export_entry(fields: Fields) -> bytes:
    """Serialize one entry in journal export format (binary-safe for bytes values)."""
    out = bytearray()
    for name, value in fields.items():
        data = value.encode() if isinstance(value, str) else value
        if isinstance(value, str) and "\n" not in value:
            out += name.encode() + b"=" + data + b"\n"
        else:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return bytes(out) + b"\n"


def export_stream(
    entries: Iterable[Fields], start_usec: int = START_USEC, step_usec: int = STEP_USEC
) -> bytes:
    """Serialize entries, adding timestamps and a boot id to those without."""
    if start_usec <= BOOT_USEC:
        raise ValueError(f"fixture entries start after the fixture boot ({BOOT_USEC} usec)")
    chunks = []
    for index, fields in enumerate(entries):
        realtime = start_usec + index * step_usec
        stamped: dict[str, str | bytes] = {
            "__REALTIME_TIMESTAMP": str(realtime),
            "__MONOTONIC_TIMESTAMP": str(realtime - BOOT_USEC),
            "_BOOT_ID": BOOT_ID,
        }
        stamped.update(fields)
        chunks.append(export_entry(stamped))
    return b"".join(chunks)


def write_journal(
    directory: Path,
    entries: Iterable[Fields],
    name: str = "fixture",
    start_usec: int = START_USEC,
    step_usec: int = STEP_USEC,
) -> Path:
    """Write ``entries`` as a new journal file ``directory/name.journal`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.journal"
    if path.exists():
        raise FileExistsError(f"{path} exists; give each write_journal call its own name")
    result = subprocess.run(
        [str(JOURNAL_REMOTE), f"--output={path}", "-"],
        input=export_stream(entries, start_usec, step_usec),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"systemd-journal-remote failed ({result.returncode}): {result.stderr.decode()}")
    return path


def usec(moment: datetime) -> int:
    """Return ``moment`` as journal microseconds."""
    return int(moment.timestamp() * 1_000_000)
