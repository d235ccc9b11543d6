"""Give the stack a real journald: the host's when it runs, else one of our own.

python-systemd's ``journal.send`` (sd_journal_send) always writes to
/run/systemd/journal/socket, so the orchestrator's structured entries reach a journal only
through that path. A namespace instance (``systemd-journald NAME``) listens on
/run/systemd/journal.NAME/socket and writes /var/log/journal/<machine-id>.NAME/, which no
writer here would reach; so when no journald runs we start the plain one, as root, without
systemd as PID 1. Found on Debian 12 (systemd 252): it creates its sockets under
/run/systemd/journal/ itself and, until someone asks it to flush, writes
/run/log/journal/<machine-id>/system.journal, which ``journalctl --directory`` and
``systemd.journal.Reader(path=...)`` read. With an empty /etc/machine-id it writes
/run/log/journal/system.journal instead, so we create the id first
(systemd-machine-id-setup). It leaves its socket files behind when it exits, and a socket
file is all ``orchestrator.log.journal_available`` looks at, so we remove them on stop.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from systemd import journal

from demo.processes import Child, StackError, Supervisor

JOURNALD = Path("/lib/systemd/systemd-journald")
RUN_DIR = Path("/run/systemd/journal")
SOCKET = RUN_DIR / "socket"
RUNTIME_JOURNALS = Path("/run/log/journal")
PERSISTENT_JOURNALS = Path("/var/log/journal")
MACHINE_ID = Path("/etc/machine-id")
HOST = "host"
OURS = "ours"


class JournaldUnavailable(StackError):
    """No journald runs and we cannot start one; the message says what is missing."""


@dataclass(frozen=True)
class Journal:
    """A running journald: where its files are, whose it is, our pid, and when we attached.

    The files outlive our journald (they are in /run, like a host's runtime journal), so a
    second run finds the first run's entries there too; read from ``started_at`` to skip them.
    """

    directory: Path
    owner: str
    started_at: float
    pid: int | None = None
    socket: Path = SOCKET

    @property
    def is_host(self) -> bool:
        """Tell whether this journald belongs to the host (we neither started nor stop it)."""
        return self.owner == HOST

    def reader(self) -> journal.Reader:
        """Open a Reader on this journal's files, positioned at ``started_at``."""
        reader = journal.Reader(path=str(self.directory))
        reader.seek_realtime(self.started_at)
        return reader


def socket_is_live(path: Path = SOCKET) -> bool:
    """Tell whether a journald answers on the datagram socket ``path`` (a leftover file does not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def choose_owner(socket_live: bool, euid: int, binary: Path, binary_exists: bool) -> str:
    """Decide whose journald to use: the host's, ours, or raise saying what is missing."""
    if socket_live:
        return HOST
    reason = f"no journald is running ({SOCKET} is not a live socket)"
    if euid != 0:
        raise JournaldUnavailable(
            f"{reason} and starting one of our own needs root (running as uid {euid}); "
            "run as root, or start the host's systemd-journald"
        )
    if not binary_exists:
        raise JournaldUnavailable(
            f"{reason} and {binary} is missing; install the Debian package systemd (scripts/bootstrap does)"
        )
    return OURS


def host_directory(machine_id: str) -> Path:
    """Return the host journald's directory: persistent when it holds journals, else runtime."""
    persistent = PERSISTENT_JOURNALS / machine_id
    if any(persistent.glob("*.journal")):
        return persistent
    return RUNTIME_JOURNALS / machine_id


def ensure_machine_id(path: Path = MACHINE_ID) -> str:
    """Return the machine id, creating /etc/machine-id first when it is missing or empty."""
    if not path.exists() or not path.read_text().strip():
        subprocess.run(["systemd-machine-id-setup"], check=True, capture_output=True)
    return path.read_text().strip()


@contextmanager
def running_journald(
    log_dir: Path, binary: Path = JOURNALD, start_seconds: float = 15.0
) -> Iterator[Journal]:
    """Yield the host's journald, or start our own for the duration of the block."""
    started_at = time.time()
    owner = choose_owner(socket_is_live(), os.geteuid(), binary, binary.exists())
    machine_id = ensure_machine_id() if owner == OURS else MACHINE_ID.read_text().strip()
    if owner == HOST:
        yield Journal(host_directory(machine_id), HOST, started_at)
        return
    # Not live, so whatever is there is a dead journald's: sockets, and a "flushed" flag
    # that would send our instance's files to /var/log/journal instead.
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    directory = RUNTIME_JOURNALS / machine_id
    supervisor = Supervisor(log_dir)
    try:
        child = supervisor.start("systemd-journald", [str(binary)])
        _wait_ready(directory, child, time.monotonic() + start_seconds)
        yield Journal(directory, OURS, started_at, child.pid)
    finally:
        supervisor.stop_all()
        shutil.rmtree(RUN_DIR, ignore_errors=True)


def _wait_ready(directory: Path, child: Child, deadline: float) -> None:
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise JournaldUnavailable(
                f"systemd-journald exited with code {child.popen.returncode}:\n{child.log_tail()}"
            )
        if socket_is_live() and (directory / "system.journal").exists():
            return
        time.sleep(0.05)
    raise JournaldUnavailable(
        f"systemd-journald did not create {SOCKET} and {directory}/system.journal in time:\n"
        + child.log_tail()
    )
