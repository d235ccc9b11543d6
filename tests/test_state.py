"""The persisted cursor and counters: round trip, atomic durable writes, damaged files named."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from exporter.state import JournalState, StateFileError, decode, encode, load, save

STATE = JournalState(
    cursor="s=abc;i=3;b=def;m=3e8;t=60a24181e4000;x=23f9",
    realtime_usec=1_778_680_800_008_000,
    counters={
        "jada_journal_entries_total": {("jada-agent.service", "6"): 41, ("jada-agent.service", "3"): 2},
        "jada_journal_cursor_resets_total": {(): 1},
    },
)


def test_state_survives_encode_and_decode_unchanged() -> None:
    assert decode(encode(STATE)) == STATE


def test_save_then_load_gives_the_same_state_in_a_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "journal-state.json"
    save(path, STATE)
    assert load(path) == STATE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["journal-state.json"]


def test_save_replaces_the_previous_state_whole(tmp_path: Path) -> None:
    path = tmp_path / "journal-state.json"
    save(path, STATE)
    save(path, JournalState(cursor="s=next", realtime_usec=5, counters={"m_total": {("a",): 1}}))
    assert load(path) == JournalState(cursor="s=next", realtime_usec=5, counters={"m_total": {("a",): 1}})


def test_load_without_a_file_means_a_first_start(tmp_path: Path) -> None:
    assert load(tmp_path / "journal-state.json") is None


def test_load_removes_a_temporary_file_left_by_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "journal-state.json"
    save(path, STATE)
    leftover = tmp_path / f".journal-state.json.{dead_pid()}.tmp"
    leftover.write_bytes(b'{"version": 1, "cur')
    assert load(path) == STATE
    assert not leftover.exists()


def test_load_leaves_the_temporary_file_of_a_live_writer_alone(tmp_path: Path) -> None:
    path = tmp_path / "journal-state.json"
    save(path, STATE)
    writing = tmp_path / f".journal-state.json.{os.getpid()}.tmp"
    writing.write_bytes(b'{"version": 1, "cur')
    assert load(path) == STATE
    assert writing.exists()


def dead_pid() -> int:
    """Return the id of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"\n  ", "empty"),
        (b"\0" * 4096, "nul_bytes"),
        (encode(STATE)[:37], "corrupt"),
        (encode(STATE)[:20] + b"\0" * 100, "corrupt"),
        (b'{"version": 9, "cursor": null, "realtime_usec": null, "counters": {}}', "corrupt"),
        (b'{"version": 1, "cursor": 5, "realtime_usec": null, "counters": {}}', "corrupt"),
        (
            b'{"version": 1, "cursor": null, "realtime_usec": null, "counters": {"m_total": [[["a"], -1]]}}',
            "corrupt",
        ),
        (
            b'{"version": 1, "cursor": null, "realtime_usec": null, "counters": {"m_total": [[["a"]]]}}',
            "corrupt",
        ),
        (b"\xff\xfe not json", "corrupt"),
    ],
)
def test_a_damaged_state_file_is_reported_with_its_problem(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "journal-state.json"
    path.write_bytes(data)
    with pytest.raises(StateFileError) as raised:
        load(path)
    assert raised.value.problem == problem
