"""Exactly once: a collector process killed with SIGKILL again and again, every entry counted once."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from journalfixtures import START_USEC, entry, event, write_journal

from exporter import state
from exporter.journal import JournalCollector
from exporter.rules import load_rule_set

RUNNER = Path(__file__).parent / "journalrunner.py"
ENTRIES = 50_000
FILES = 5
KILLS = 20
UNIT = "jada-agent.service"


def token(status_code: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return "jada_journal_token_errors_total", frozenset(
        {"component": "port-sheet", "status_code": status_code}.items()
    )


def sync() -> tuple[str, frozenset[tuple[str, str]]]:
    return "jada_journal_sync_failures_total", frozenset({"component": "port-sheet"}.items())


def exits(reason: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return "jada_journal_session_exits_total", frozenset({"reason": reason}.items())


def entries(priority: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return "jada_journal_entries_total", frozenset({"unit": UNIT, "priority": priority}.items())


# Each kind of entry, and the counter children it must add one to.
KINDS = {
    "token_line": (
        entry("[port-sheet] token error: HTTP Error 400: Bad Request", priority="3"),
        [token("400"), entries("3")],
    ),
    "token_event": (
        event(
            "[port-sheet] token error: HTTP 401 invalid_client: bad",
            "token_error",
            component="port-sheet",
            status_code="401",
        ),
        [token("401"), entries("6")],
    ),
    "sync_line": (
        entry("[port-sheet] sync failed at 2026-05-13T14:30:00Z", priority="3"),
        [sync(), entries("3")],
    ),
    "sync_event": (
        event(
            "[port-sheet] sync failed at 2026-05-13T15:00:00Z: token", "sync_failed", component="port-sheet"
        ),
        [sync(), entries("6")],
    ),
    "exit_line": (
        entry("[session] task 7 session 12 exited: max_turns after 30 turns (exit code 1)"),
        [exits("max_turns"), entries("6")],
    ),
    "exit_event": (
        event(
            "[session] task 8 session 13 exited: completed after 9 turns (exit code 0)",
            "session_exit",
            exit_reason="completed",
        ),
        [exits("completed"), entries("6")],
    ),
    "noise": (entry("GET /metrics 200 0.002s"), [entries("6")]),
    "other_unit": (entry("[port-sheet] sync failed at 2026-05-13T14:30:00Z", unit="cron.service"), []),
}


def counted(state_file: Path) -> int:
    """Return how many entries the persisted state says were counted."""
    try:
        current = state.decode(state_file.read_bytes())
    except FileNotFoundError:
        return 0
    return sum(current.counters.get("jada_journal_entries_total", {}).values())


def test_sigkill_at_random_moments_neither_loses_nor_double_counts(tmp_path: Path) -> None:
    rng = random.Random(20260513)
    kinds = rng.choices(list(KINDS), k=ENTRIES)
    journal_dir = tmp_path / "journal"
    per_file = ENTRIES // FILES
    for index in range(FILES):
        chunk = kinds[index * per_file : (index + 1) * per_file]
        start = START_USEC + index * per_file * 1000
        write_journal(journal_dir, [KINDS[kind][0] for kind in chunk], f"part{index}", start)
    expected: Counter[tuple[str, frozenset[tuple[str, str]]]] = Counter()
    for kind in kinds:
        expected.update(KINDS[kind][1])
    matched = ENTRIES - kinds.count("other_unit")

    state_file = tmp_path / "state" / "journal-state.json"
    command = [sys.executable, str(RUNNER), "--directory", str(journal_dir), "--state", str(state_file)]
    for _ in range(KILLS):
        before = counted(state_file)
        target = before + rng.randint(1, 1500)
        runner = subprocess.Popen(command, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while counted(state_file) < target:
                assert runner.poll() is None, runner.stderr.read().decode() if runner.stderr else ""
                assert time.monotonic() < deadline, "the runner made no progress"
                time.sleep(0.002)
        finally:
            runner.kill()
            runner.wait()
            if runner.stderr:
                runner.stderr.close()
        assert counted(state_file) < matched, "killed after the end: move the kills earlier"

    finish = subprocess.run([*command, "--until-caught-up"], capture_output=True, timeout=120, check=False)
    assert finish.returncode == 0, finish.stderr.decode()

    collector = JournalCollector(load_rule_set(None), state_file=state_file, directory=journal_dir)
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }
    metrics = {metric for metric, _ in expected}
    assert {key: v for key, v in samples.items() if key[0] in metrics and v} == dict(expected)
    assert samples[("jada_journal_cursor_resets_total", frozenset())] == 0
    assert sorted(p.name for p in state_file.parent.iterdir()) == ["journal-state.json"]
