"""The journal collector's persisted state: the cursor and every counter value, in one file.

They are written together, atomically (write a temporary file, fsync, rename, fsync the
directory), so that after a restart or a kill -9 each entry has been counted exactly
once: either both the new cursor and the new counts are on disk, or neither is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1

Counts = dict[str, dict[tuple[str, ...], int]]


class StateFileError(Exception):
    """A state file that cannot be used; ``problem`` is one of empty, nul_bytes, corrupt."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem


@dataclass
class JournalState:
    """Where reading stopped and what was counted up to there."""

    cursor: str | None = None
    realtime_usec: int | None = None
    counters: Counts = field(default_factory=dict)


def encode(state: JournalState) -> bytes:
    """Serialize ``state`` as JSON with counters as lists of [label values, count]."""
    document = {
        "version": VERSION,
        "cursor": state.cursor,
        "realtime_usec": state.realtime_usec,
        "counters": {
            metric: [[list(labels), count] for labels, count in sorted(children.items())]
            for metric, children in sorted(state.counters.items())
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _decode_counters(raw: Any) -> Counts:
    """Check and convert the counters part of a state document."""
    if not isinstance(raw, dict):
        raise ValueError("counters is not a mapping")
    counters: Counts = {}
    for metric, children in raw.items():
        if not isinstance(children, list):
            raise ValueError(f"counters of {metric} are not a list")
        converted: dict[tuple[str, ...], int] = {}
        for child in children:
            labels, count = child
            if not (isinstance(labels, list) and all(isinstance(v, str) for v in labels)):
                raise ValueError(f"label values of {metric} are not strings")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"a count of {metric} is not a non-negative integer")
            converted[tuple(labels)] = count
        counters[metric] = converted
    return counters


def decode(data: bytes) -> JournalState:
    """Parse a state file's bytes; raise StateFileError saying what is wrong with them."""
    if not data.strip():
        raise StateFileError("empty", "the file is empty")
    if not data.strip(b"\0"):
        raise StateFileError("nul_bytes", "the file holds only NUL bytes")
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} state document")
        cursor, realtime = document["cursor"], document["realtime_usec"]
        if cursor is not None and not isinstance(cursor, str):
            raise ValueError("cursor is not a string")
        if realtime is not None and (isinstance(realtime, bool) or not isinstance(realtime, int)):
            raise ValueError("realtime_usec is not an integer")
        counters = _decode_counters(document["counters"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StateFileError("corrupt", f"the file is not a valid state document ({exc})") from None
    return JournalState(cursor=cursor, realtime_usec=realtime, counters=counters)


def _remove_leftovers(path: Path) -> None:
    """Remove temporary files of writers killed between writing and renaming them."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        pid = leftover.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Tell whether a process with this id exists (a live writer's file is not a leftover)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load(path: Path) -> JournalState | None:
    """Read the state at ``path``; None when there is none yet, StateFileError when it is bad."""
    _remove_leftovers(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return decode(data)


def save(path: Path, state: JournalState) -> None:
    """Write ``state`` to ``path`` atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encode(state))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # The rename is only durable once the directory entry itself reaches the disk.
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
