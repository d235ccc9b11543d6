"""The demo's journald: a real systemd-journald, written to by python-systemd, read back with Reader."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from systemd import journal as sd_journal

from demo import journald
from demo.journald import HOST, OURS, JournaldUnavailable
from orchestrator import log

needs_journald = pytest.mark.skipif(
    not journald.socket_is_live() and (os.geteuid() != 0 or not journald.JOURNALD.exists()),
    reason="needs a running journald, or root and /lib/systemd/systemd-journald",
)

SEND = """
import sys
from systemd import journal
journal.send(
    "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked.",
    SYSLOG_IDENTIFIER="jada-agent",
    PRIORITY="3",
    JADA_EVENT="token_error",
    JADA_COMPONENT="port-sheet",
    JADA_STATUS_CODE="400",
    JADA_RUN=sys.argv[1],
)
"""


def read_back(directory: Path, run: str, deadline: float) -> list[dict]:
    """Poll the journal files in ``directory`` for entries of this run until the deadline."""
    while True:
        reader = sd_journal.Reader(path=str(directory))
        try:
            reader.add_match(SYSLOG_IDENTIFIER="jada-agent", JADA_RUN=run)
            entries = list(reader)
        finally:
            reader.close()
        if entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def runs_since_start(journal: journald.Journal) -> set[str]:
    """Return the JADA_RUN values of jada-agent entries from the journal's start on."""
    reader = journal.reader()
    try:
        reader.add_match(SYSLOG_IDENTIFIER="jada-agent")
        return {entry["JADA_RUN"] for entry in reader if "JADA_RUN" in entry}
    finally:
        reader.close()


def send_from_another_process(run: str) -> None:
    subprocess.run([sys.executable, "-c", SEND, run], check=True)


@needs_journald
def test_entry_sent_with_python_systemd_is_read_back_from_the_journal_directory(tmp_path: Path) -> None:
    run = uuid.uuid4().hex
    with journald.running_journald(tmp_path) as journal:
        send_from_another_process(run)
        entries = read_back(journal.directory, run, time.monotonic() + 15)
    assert len(entries) == 1
    entry = entries[0]
    assert (
        entry["MESSAGE"]
        == "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked."
    )
    assert entry["JADA_EVENT"] == "token_error"
    assert entry["JADA_COMPONENT"] == "port-sheet"
    assert entry["JADA_STATUS_CODE"] == "400"
    assert entry["PRIORITY"] == 3


@needs_journald
def test_orchestrator_log_events_reach_our_journal_with_their_fields(tmp_path: Path) -> None:
    run = uuid.uuid4().hex
    script = (
        "import sys\n"
        "from orchestrator import log\n"
        "log.setup()\n"
        "log.event('[port-sheet] sync failed at 2026-05-13T14:30:00Z: invalid_grant',"
        " event='sync_failed', component='port-sheet', job_name='port_sheet_sync', run=sys.argv[1])\n"
    )
    with journald.running_journald(tmp_path) as journal:
        subprocess.run([sys.executable, "-c", script, run], check=True)
        (entry,) = read_back(journal.directory, run, time.monotonic() + 15)
    assert entry["MESSAGE"] == "[port-sheet] sync failed at 2026-05-13T14:30:00Z: invalid_grant"
    assert (entry["JADA_EVENT"], entry["JADA_COMPONENT"], entry["JADA_JOB_NAME"]) == (
        "sync_failed",
        "port-sheet",
        "port_sheet_sync",
    )


@needs_journald
def test_our_journald_is_stopped_and_leaves_no_socket_behind(tmp_path: Path) -> None:
    if journald.socket_is_live():
        pytest.skip("the host's journald runs; we start none of our own")
    with journald.running_journald(tmp_path) as journal:
        assert journal.owner == OURS
        assert log.journal_available()
        assert psutil.Process(journal.pid).name() == "systemd-journald"
    assert not journald.SOCKET.exists()
    assert not log.journal_available()
    assert not psutil.pid_exists(journal.pid) or psutil.Process(journal.pid).status() == psutil.STATUS_ZOMBIE


@needs_journald
def test_a_dead_journalds_socket_file_is_replaced_and_twice_in_a_row_works(tmp_path: Path) -> None:
    if journald.socket_is_live():
        pytest.skip("the host's journald runs; we start none of our own")
    journald.RUN_DIR.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stale:
        stale.bind(str(journald.SOCKET))
    assert journald.SOCKET.is_socket() and not journald.socket_is_live()
    runs = [uuid.uuid4().hex, uuid.uuid4().hex]
    for attempt, run in enumerate(runs):
        with journald.running_journald(tmp_path / str(attempt)) as journal:
            send_from_another_process(run)
            assert len(read_back(journal.directory, run, time.monotonic() + 15)) == 1
            # The first run's entry is still in the files; the reader from started_at skips it.
            assert runs_since_start(journal) == {run}
        assert not journald.SOCKET.exists()


def test_live_socket_means_the_hosts_journald() -> None:
    assert journald.choose_owner(True, 1000, Path("/missing"), False) == HOST


def test_no_journald_as_root_with_the_binary_means_ours() -> None:
    assert journald.choose_owner(False, 0, journald.JOURNALD, True) == OURS


def test_no_journald_and_not_root_says_root_is_needed() -> None:
    with pytest.raises(JournaldUnavailable) as raised:
        journald.choose_owner(False, 1000, journald.JOURNALD, True)
    assert str(raised.value) == (
        "no journald is running (/run/systemd/journal/socket is not a live socket) and starting one of "
        "our own needs root (running as uid 1000); run as root, or start the host's systemd-journald"
    )


def test_no_journald_and_no_binary_names_the_package_to_install() -> None:
    with pytest.raises(JournaldUnavailable) as raised:
        journald.choose_owner(False, 0, Path("/lib/systemd/systemd-journald"), False)
    assert str(raised.value) == (
        "no journald is running (/run/systemd/journal/socket is not a live socket) and "
        "/lib/systemd/systemd-journald is missing; "
        "install the Debian package systemd (scripts/bootstrap does)"
    )
