"""The SQLite store: task queue rules, the daily ledger, migrations and foreign files."""

import multiprocessing
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.store import MIGRATIONS, SCHEMA_VERSION, Store, StoreError, utc_day


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "jada.db") as opened:
        yield opened


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_new_store_is_wal_at_the_current_schema_version(tmp_path: Path) -> None:
    Store(tmp_path / "jada.db").close()
    db = sqlite3.connect(tmp_path / "jada.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reopening_keeps_tasks_and_does_not_rerun_migrations(tmp_path: Path) -> None:
    with Store(tmp_path / "jada.db") as first:
        task_id = first.add_task("Refactor", "refactor the page generator")
    with Store(tmp_path / "jada.db") as second:
        assert second.get_task(task_id).title == "Refactor"
        assert second.schema_version == SCHEMA_VERSION


def test_a_version_1_store_is_migrated_in_place_with_its_tasks_counted(tmp_path: Path) -> None:
    path = tmp_path / "jada.db"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.executemany(
        "INSERT INTO tasks (title, prompt, state, created_at, updated_at) VALUES (?, '', ?, 0, 0)",
        [("a", "done"), ("b", "done"), ("c", "queued")],
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.snapshot().tasks_by_state["done"] == 2
        store.set_task_state(3, "done")
        assert store.snapshot().tasks_by_state == {
            "queued": 0,
            "running": 0,
            "needs_you": 0,
            "done": 3,
            "failed": 0,
            "cancelled": 0,
        }


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jada.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this jada-agent"):
        Store(path)


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "jada.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(StoreError, match=r"jada.db is not an SQLite database; it was left untouched"):
        Store(path)
    assert path.read_text() == "these are my notes, not a database\n"
    assert not (tmp_path / "jada.db-wal").exists()


def test_new_task_is_queued_with_no_attempts(store: Store) -> None:
    task = store.get_task(store.add_task("Refactor", "refactor it", priority=3))
    assert (task.state, task.priority, task.attempts, task.depends_on, task.progress) == (
        "queued",
        3,
        0,
        (),
        "",
    )


def test_unknown_task_id_names_the_id(store: Store) -> None:
    with pytest.raises(StoreError, match="no task with id 42"):
        store.get_task(42)
    with pytest.raises(StoreError, match="no task with id 42"):
        store.add_task("x", "y", depends_on=[42])


def test_dependency_cycle_is_rejected_and_nothing_is_added(store: Store) -> None:
    first = store.add_task("a", "a")
    second = store.add_task("b", "b", depends_on=[first])
    with pytest.raises(StoreError, match=r"dependency cycle \(1 -> 2 -> 1\)"):
        store.add_dependency(first, second)
    with pytest.raises(StoreError, match="dependency cycle"):
        store.add_task("c", "c", depends_on=[second], blocks=[first])
    assert [t.id for t in store.list_tasks()] == [first, second]
    assert store.get_task(first).depends_on == ()


def test_self_dependency_is_a_cycle(store: Store) -> None:
    task = store.add_task("a", "a")
    with pytest.raises(StoreError, match="cycle"):
        store.add_dependency(task, task)


def test_task_is_runnable_only_when_all_dependencies_are_done(store: Store) -> None:
    first = store.add_task("a", "a")
    second = store.add_task("b", "b", priority=10, depends_on=[first])
    assert store.next_runnable_task().id == first
    store.set_task_state(first, "done")
    assert store.next_runnable_task().id == second


def test_next_runnable_is_by_priority_then_longest_waiting(store: Store) -> None:
    low = store.add_task("low", "x", priority=0)
    first = store.add_task("first", "x", priority=5)
    second = store.add_task("second", "x", priority=5)
    assert store.next_runnable_task().id == first
    session = store.start_session(first, day_limit=5)
    store.finish_session(session, "max_turns", 1, 30)
    store.set_task_state(first, "queued")
    assert store.next_runnable_task().id == second
    store.set_task_state(first, "cancelled")
    store.set_task_state(second, "done")
    assert store.next_runnable_task().id == low


def test_empty_queue_has_no_runnable_task(store: Store) -> None:
    assert store.next_runnable_task() is None


def test_request_human_makes_the_parent_wait_for_the_answer(store: Store) -> None:
    parent = store.add_task("e-signature", "fix it")
    question = store.request_human(parent, "Which signing provider?")
    asked = store.get_task(question)
    assert (asked.state, asked.parent_id, asked.question) == ("needs_you", parent, "Which signing provider?")
    assert asked.needs_you_since is not None
    assert store.get_task(parent).depends_on == (question,)
    assert store.next_runnable_task() is None

    store.answer_task(question, "Use DocuSeal")
    assert store.get_task(question).state == "done"
    assert store.get_task(question).answer == "Use DocuSeal"
    resumed = store.get_task(parent)
    assert resumed.state == "queued"
    assert "Use DocuSeal" in resumed.progress
    assert store.next_runnable_task().id == parent


def test_answering_an_escalated_task_requeues_it_with_fresh_attempts(store: Store) -> None:
    task = store.add_task("refactor", "x")
    store.start_session(task, day_limit=5)
    store.set_task_state(task, "needs_you", reason="hit max_turns in 1 sessions")
    store.answer_task(task, "split it into page components")
    answered = store.get_task(task)
    assert (answered.state, answered.attempts, answered.needs_you_since) == ("queued", 0, None)
    assert answered.progress == "A person answered: split it into page components"


def test_only_needs_you_tasks_take_an_answer(store: Store) -> None:
    task = store.add_task("a", "a")
    with pytest.raises(StoreError, match="task 1 is queued, not needs_you"):
        store.answer_task(task, "yes")


def test_cancel_refuses_finished_tasks(store: Store) -> None:
    task = store.add_task("a", "a")
    store.cancel_task(task)
    assert store.get_task(task).state == "cancelled"
    with pytest.raises(StoreError, match="already cancelled"):
        store.cancel_task(task)


def test_progress_notes_are_appended_in_order(store: Store) -> None:
    task = store.add_task("a", "a")
    store.append_progress(task, "turn budget spent; next: the header")
    store.append_progress(task, "header done")
    assert store.get_task(task).progress == "turn budget spent; next: the header\nheader done"


def test_start_session_spends_the_budget_and_marks_the_task_running(store: Store) -> None:
    task = store.add_task("a", "a")
    session = store.start_session(task, day_limit=5, now=ts("2026-05-13T00:00:00"))
    assert store.get_task(task).state == "running"
    assert store.get_task(task).attempts == 1
    assert store.sessions_used("2026-05-13") == 1
    assert [s.id for s in store.running_sessions()] == [session]


def test_the_daily_budget_is_never_exceeded(store: Store) -> None:
    started = []
    for index in range(7):
        task = store.add_task(f"t{index}", "x")
        started.append(store.start_session(task, day_limit=5, now=ts("2026-05-13T10:00:00")))
    assert started[5:] == [None, None]
    assert store.sessions_used("2026-05-13") == 5
    assert store.get_task(6).state == "queued"


def test_sessions_at_2359_and_0000_count_on_different_days(store: Store) -> None:
    first = store.add_task("a", "a")
    second = store.add_task("b", "b")
    store.start_session(first, day_limit=1, now=ts("2026-05-13T23:59:00"))
    assert store.start_session(second, day_limit=1, now=ts("2026-05-13T23:59:30")) is None
    assert store.start_session(second, day_limit=1, now=ts("2026-05-14T00:00:00")) is not None
    assert [s.task_id for s in store.sessions_on_day("2026-05-13")] == [first]
    assert [s.task_id for s in store.sessions_on_day("2026-05-14")] == [second]


def test_finished_sessions_still_count_against_the_day(store: Store) -> None:
    task = store.add_task("a", "a")
    session = store.start_session(task, day_limit=1, now=ts("2026-05-13T01:00:00"))
    store.finish_session(session, "interrupted", None, 4)
    store.set_task_state(task, "queued")
    assert store.start_session(task, day_limit=1, now=ts("2026-05-13T02:00:00")) is None


def test_session_progress_and_finish_are_recorded(store: Store) -> None:
    task = store.add_task("a", "a")
    session = store.start_session(task, day_limit=5)
    usage = {"input": 30, "output": 12, "cache_read": 900, "cache_creation": 5}
    store.update_session_progress(session, 3, usage)
    store.finish_session(session, "max_turns", 1, 30, summary="ran out of turns")
    recorded = store.get_session(session)
    assert (recorded.turns, recorded.exit_reason, recorded.exit_code, recorded.summary) == (
        30,
        "max_turns",
        1,
        "ran out of turns",
    )
    assert recorded.usage == usage
    assert store.running_sessions() == []


def test_unknown_exit_reason_is_refused(store: Store) -> None:
    session = store.start_session(store.add_task("a", "a"), day_limit=5)
    with pytest.raises(StoreError, match="unknown exit reason 'crashed'"):
        store.finish_session(session, "crashed", 3, 0)


def test_snapshot_counts_every_state_and_the_oldest_needs_you(store: Store) -> None:
    parent = store.add_task("a", "a")
    store.add_task("b", "b")
    question = store.request_human(parent, "?")
    store.start_session(store.add_task("c", "c"), day_limit=5)
    snapshot = store.snapshot()
    assert snapshot.tasks_by_state == {
        "queued": 2,
        "running": 1,
        "needs_you": 1,
        "done": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert snapshot.needs_you_oldest == store.get_task(question).needs_you_since
    assert snapshot.sessions_today == 1


def test_snapshot_has_no_oldest_needs_you_when_there_is_none(store: Store) -> None:
    store.add_task("a", "a")
    assert store.snapshot().needs_you_oldest is None


def test_job_runs_give_the_last_success(store: Store) -> None:
    assert store.last_job_success("port_sheet_sync") is None
    store.record_job_run("port_sheet_sync", 100.0, 101.0, "success", 1.0, "12 rows")
    store.record_job_run("port_sheet_sync", 1900.0, 1900.4, "failure", 0.4, "invalid_grant")
    assert store.last_job_success("port_sheet_sync") == 101.0
    assert [r.result for r in store.last_job_runs("port_sheet_sync")] == ["failure", "success"]


def test_utc_day_is_the_utc_calendar_day() -> None:
    assert utc_day(ts("2026-05-13T23:59:59")) == "2026-05-13"
    assert utc_day(ts("2026-05-14T00:00:00")) == "2026-05-14"


def _spend(path: str, first_task: int, out: "multiprocessing.Queue[int]") -> None:
    with Store(path) as store:
        won = 0
        for task in range(first_task, first_task + 4):
            if store.start_session(task, day_limit=5, now=ts("2026-05-13T12:00:00")) is not None:
                won += 1
        out.put(won)


def test_processes_racing_for_the_budget_never_exceed_it(tmp_path: Path) -> None:
    path = tmp_path / "jada.db"
    with Store(path) as store:
        for index in range(8):
            store.add_task(f"t{index}", "x")
    out: multiprocessing.Queue[int] = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_spend, args=(str(path), first, out)) for first in (1, 5)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert out.get(timeout=5) + out.get(timeout=5) == 5
    with Store(path) as store:
        assert store.sessions_used("2026-05-13") == 5
        assert len(store.sessions_on_day("2026-05-13")) == 5
