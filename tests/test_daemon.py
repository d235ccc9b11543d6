"""The daemon loop in-process with the fake session child: what each exit does to a task."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_daemon import FAKE_SESSION_COMMAND, daemon_for, load, write_config

from orchestrator.daemon import (
    Daemon,
    Decision,
    Notifier,
    SessionOutcome,
    decide,
    exit_reason,
    parse_event,
    progress_note,
    session_command,
    status_line,
    watchdog_interval,
)
from orchestrator.store import Snapshot


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    monkeypatch.setenv("JADA_SESSION_COMMAND", FAKE_SESSION_COMMAND)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    cfg = load(write_config(tmp_path, max_attempts=2, max_turns=30, session_timeout_seconds=60))
    with daemon_for(cfg) as daemon:
        yield daemon


def sample(daemon: Daemon, name: str, **labels: str) -> float | None:
    return daemon.metrics.registry.get_sample_value(name, labels)


# Pure decisions


@pytest.mark.parametrize(
    ("code", "reason"), [(0, "completed"), (1, "max_turns"), (2, "error"), (3, "error"), (-9, "error")]
)
def test_exit_code_maps_to_reason_as_in_the_seed(code: int, reason: str) -> None:
    assert exit_reason(code) == reason


@pytest.mark.parametrize(
    ("reason", "attempts", "expected"),
    [
        ("completed", 1, Decision("done", None)),
        ("max_turns", 1, Decision("queued", None)),
        ("interrupted", 5, Decision("queued", None)),
        ("error", 1, Decision("queued", None)),
        ("timeout", 1, Decision("queued", None)),
        ("error", 2, Decision("failed", "its last 2 sessions ended with error")),
        ("timeout", 2, Decision("failed", "its last 2 sessions ended with timeout")),
    ],
)
def test_decide_next_task_state(reason: str, attempts: int, expected: Decision) -> None:
    assert decide(reason, attempts, max_attempts=2, max_turns=30) == expected


def test_max_turns_after_max_attempts_goes_to_a_person_with_the_reason() -> None:
    decision = decide("max_turns", 3, max_attempts=3, max_turns=30)
    assert decision.state == "needs_you"
    assert decision.reason.startswith("hit the 30-turn limit in 3 sessions (max_attempts 3)")


def test_progress_note_carries_summary_and_last_text() -> None:
    outcome = SessionOutcome(12, 7, "max_turns", 1, 30, "refactored 9 files", "Next: the header.")
    assert progress_note(outcome) == (
        "Session 12 ended with max_turns after 30 turns; summary: refactored 9 files; "
        "last words: Next: the header."
    )


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[1, 2]",
        b'{"event": "turn", "turns": -1}',
        b'{"event": "turn", "turns": true}',
        b'{"event": "surprise"}',
        b'{"event": "result", "reason": "exploded", "turns": 3}',
        b'{"event": "llm_request", "model": "m", "outcome": "made_up", "duration_seconds": 1}',
        b'{"event": "llm_request", "model": "m", "outcome": "success", "duration_seconds": 1, '
        b'"usage": {"password": 3}}',
        b"\xff\xfe",
    ],
)
def test_malformed_event_lines_are_rejected(line: bytes) -> None:
    assert parse_event(line) is None


def test_well_formed_events_are_accepted() -> None:
    assert parse_event(b'{"event": "turn", "turns": 3}') == {"event": "turn", "turns": 3}
    request = (
        b'{"event": "llm_request", "model": "claude-sonnet-4-5", "outcome": "rate_limited",'
        b' "duration_seconds": 0.5, "usage": {"input": 10, "cache_read": 5}}'
    )
    assert parse_event(request)["outcome"] == "rate_limited"


def test_status_line_has_budget_queue_and_activity() -> None:
    snapshot = Snapshot(
        {"queued": 2, "running": 1, "needs_you": 1, "done": 4, "failed": 0, "cancelled": 0}, None, 3
    )
    assert status_line(snapshot, 5, "running task 7 session 12 (turn 3)") == (
        "sessions 3/5 today; queue 2 queued, 1 running, 1 needs you; running task 7 session 12 (turn 3)"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_our_pid(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval(environ, 4242) == expected


def test_the_real_session_child_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JADA_SESSION_COMMAND", raising=False)
    command = session_command(load(write_config(tmp_path)), 7, 12, 9)
    tail = ["-m", "orchestrator", "--config", str(tmp_path / "config.toml")]
    assert command[-11:] == [*tail, "session", "run", "7", "--session-id", "12", "--events-fd", "9"]
    assert command[:3] == ["/usr/bin/setpriv", "--pdeathsig", "KILL"]


# The loop with the fake child


def test_idle_when_the_queue_is_empty(daemon: Daemon) -> None:
    assert daemon.run_once() == "idle"
    assert sample(daemon, "jada_agent_sessions_started_total") == 0


def test_max_turns_requeues_the_task_with_its_progress(daemon: Daemon) -> None:
    task = daemon.store.add_task("Refactor", "[scenario:tool_forever] refactor the page generator")
    assert daemon.run_once() == "session"
    assert daemon.store.running_sessions() == []
    updated = daemon.store.get_task(task)
    assert (updated.state, updated.attempts) == ("queued", 1)
    assert updated.progress == (
        "Session 1 ended with max_turns after 30 turns; summary: refactored 30 files; "
        "last words: Next: the header component."
    )
    assert sample(daemon, "jada_agent_session_exits_total", reason="max_turns") == 1
    assert sample(daemon, "jada_agent_session_turns_bucket", reason="max_turns", le="29.0") == 0
    assert sample(daemon, "jada_agent_session_turns_bucket", reason="max_turns", le="30.0") == 1
    assert sample(daemon, "jada_agent_llm_requests_total", model=daemon.cfg.model, outcome="success") == 30
    assert sample(daemon, "jada_agent_llm_tokens_total", model=daemon.cfg.model, token_type="cache_read") == (
        900 * 30
    )


def test_max_turns_after_max_attempts_moves_the_task_to_needs_you(daemon: Daemon) -> None:
    task = daemon.store.add_task("Refactor", "[scenario:tool_forever]")
    daemon.run_once()
    daemon.run_once()
    moved = daemon.store.get_task(task)
    assert moved.state == "needs_you"
    assert moved.reason.startswith("hit the 30-turn limit in 2 sessions")
    assert daemon.run_once() == "idle"


def test_completed_session_marks_the_task_done(daemon: Daemon) -> None:
    task = daemon.store.add_task("Small", "[scenario:tool_turns:3]")
    daemon.run_once()
    assert daemon.store.get_task(task).state == "done"
    session = daemon.store.get_session(1)
    assert (session.exit_reason, session.exit_code, session.turns) == ("completed", 0, 3)
    assert sample(daemon, "jada_agent_session_exits_total", reason="completed") == 1


def test_request_human_leaves_a_needs_you_question(daemon: Daemon) -> None:
    task = daemon.store.add_task("E-signature", "[scenario:request_human]")
    daemon.run_once()
    (question,) = daemon.store.list_tasks("needs_you")
    assert (question.parent_id, daemon.store.get_task(task).state) == (task, "done")


def test_error_requeues_then_fails_after_max_attempts(daemon: Daemon) -> None:
    task = daemon.store.add_task("Bad key", "[scenario:unauthorized]")
    daemon.run_once()
    assert daemon.store.get_task(task).state == "queued"
    daemon.run_once()
    failed = daemon.store.get_task(task)
    assert (failed.state, failed.reason) == ("failed", "its last 2 sessions ended with error")
    assert sample(daemon, "jada_agent_session_exits_total", reason="error") == 2
    assert (
        sample(
            daemon, "jada_agent_llm_requests_total", model=daemon.cfg.model, outcome="authentication_error"
        )
        == 2
    )


def test_a_crashing_child_is_an_error_not_a_daemon_crash(daemon: Daemon) -> None:
    daemon.store.add_task("Crash", "[scenario:crash]")
    outcome_state = daemon.run_once()
    session = daemon.store.get_session(1)
    assert (outcome_state, session.exit_reason, session.exit_code) == ("session", "error", 3)


def test_malformed_events_are_counted_and_the_session_still_completes(daemon: Daemon) -> None:
    task = daemon.store.add_task("Garbage", "[scenario:garbage]")
    daemon.run_once()
    assert daemon.store.get_task(task).state == "done"
    assert sample(daemon, "jada_agent_session_events_malformed_total") == 3


def test_a_hung_session_is_killed_at_the_wall_clock_limit(tmp_path: Path, daemon: Daemon) -> None:
    cfg = load(write_config(tmp_path, session_timeout_seconds=1, max_attempts=2))
    hung = Daemon(cfg, daemon.store, daemon.metrics, notifier=Notifier(environ={}))
    task = daemon.store.add_task("Hang", "[scenario:hang]")
    hung.run_once()
    session = daemon.store.get_session(1)
    assert (session.exit_reason, session.exit_code) == ("timeout", None)
    assert daemon.store.get_task(task).state == "queued"
    assert sample(daemon, "jada_agent_session_exits_total", reason="timeout") == 1


def test_cancelling_a_running_task_is_not_undone_by_its_session_end(daemon: Daemon) -> None:
    task = daemon.store.add_task("Refactor", "[scenario:tool_turns:2]")
    session_id = daemon.store.start_session(task, daemon.cfg.daily_sessions)
    daemon.store.cancel_task(task)
    daemon.run_session(daemon.store.get_task(task), session_id)
    assert daemon.store.get_task(task).state == "cancelled"


def test_recover_marks_leftover_sessions_interrupted_and_requeues(daemon: Daemon) -> None:
    task = daemon.store.add_task("Refactor", "x")
    session_id = daemon.store.start_session(task, daemon.cfg.daily_sessions)
    daemon.store.update_session_progress(session_id, 4, {"input": 1})
    assert daemon.recover() == [session_id]
    session = daemon.store.get_session(session_id)
    assert (session.exit_reason, session.turns) == ("interrupted", 4)
    assert daemon.store.get_task(task).state == "queued"
    assert sample(daemon, "jada_agent_session_exits_total", reason="interrupted") == 1
    assert daemon.store.sessions_used_today() == 1


def test_sigterm_stops_a_slow_session_after_its_turn(daemon: Daemon) -> None:
    task = daemon.store.add_task("Slow", "[scenario:slow:0.3]")
    session_id = daemon.store.start_session(task, daemon.cfg.daily_sessions)
    daemon.request_stop()
    outcome = daemon.run_session(daemon.store.get_task(task), session_id)
    assert (outcome.reason, outcome.exit_code) == ("interrupted", None)
    assert outcome.turns >= 1
    assert daemon.store.get_task(task).state == "queued"


def test_no_session_starts_once_stopping(daemon: Daemon) -> None:
    daemon.store.add_task("Small", "[scenario:tool_turns:1]")
    daemon.request_stop()
    assert daemon.run_once() == "stopping"
    assert daemon.store.sessions_used_today() == 0


def test_health_is_ok_while_the_loop_beats_and_the_store_reads(daemon: Daemon) -> None:
    daemon.run_once()
    assert daemon.health() == (True, "ok: idle")


def test_health_fails_when_the_loop_stalls(daemon: Daemon) -> None:
    daemon.last_beat = time.monotonic() - 120
    ok, detail = daemon.health()
    assert (ok, detail) == (False, "daemon loop stalled for 120s")


def test_health_fails_when_the_store_cannot_be_read(daemon: Daemon) -> None:
    daemon.store.close()
    ok, detail = daemon.health()
    assert not ok
    assert detail.startswith("store unreadable:")


def test_session_exit_is_logged_for_people_and_machines(daemon: Daemon, logs: io.StringIO) -> None:
    task = daemon.store.add_task("Refactor", "[scenario:tool_forever]")
    daemon.run_once()
    (line,) = [line for line in logs.getvalue().splitlines() if "JADA_EVENT=session_exit" in line]
    message = f"[session] task {task} session 1 exited: max_turns after 30 turns (exit code 1)"
    assert f"INFO {message} " in line
    fields = dict(field.split("=", 1) for field in line.split(message, 1)[1].split())
    assert fields == {
        "JADA_EVENT": "session_exit",
        "JADA_TASK_ID": str(task),
        "JADA_SESSION_ID": "1",
        "JADA_EXIT_REASON": "max_turns",
        "JADA_EXIT_CODE": "1",
        "JADA_TURNS": "30",
    }


def test_a_task_cancelled_between_choosing_and_starting_is_skipped(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled = daemon.store.add_task("Cancelled", "[scenario:tool_turns:1]")
    other = daemon.store.add_task("Other", "[scenario:tool_turns:1]")
    chosen = [daemon.store.get_task(cancelled), daemon.store.get_task(other)]
    daemon.store.cancel_task(cancelled)
    monkeypatch.setattr(daemon.store, "next_runnable_task", lambda: chosen.pop(0))
    assert daemon.run_once() == "session"
    session = daemon.store.get_session(1)
    assert (session.task_id, session.exit_reason) == (other, "completed")
    assert daemon.store.get_task(cancelled).state == "cancelled"


def test_an_idle_daemon_says_so_once_not_every_poll(daemon: Daemon, logs: io.StringIO) -> None:
    assert [daemon.run_once() for _ in range(3)] == ["idle"] * 3
    assert logs.getvalue().count("[daemon] no runnable task; idle") == 1
