"""The daily session budget across the UTC day boundary (freezegun moves the daemon's clock)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time
from helpers_daemon import FAKE_SESSION_COMMAND, load, write_config

from orchestrator.daemon import Daemon, Notifier
from orchestrator.metrics import Metrics
from orchestrator.store import Store


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    monkeypatch.setenv("JADA_SESSION_COMMAND", FAKE_SESSION_COMMAND)
    cfg = load(write_config(tmp_path, daily_sessions=5))
    store = Store(cfg.store_path)
    metrics = Metrics(cfg.max_turns, cfg.daily_sessions, snapshot=store.snapshot)
    yield Daemon(cfg, store, metrics, notifier=Notifier(environ={}))
    store.close()


def used(daemon: Daemon) -> float | None:
    return daemon.metrics.registry.get_sample_value("jada_agent_daily_sessions_used")


def test_a_sixth_session_waits_for_midnight_utc(daemon: Daemon) -> None:
    for index in range(6):
        daemon.store.add_task(f"task {index}", "[scenario:tool_turns:1]")
    with freeze_time("2026-05-13 18:00:00", tick=True):
        assert [daemon.run_once() for _ in range(5)] == ["session"] * 5
        assert daemon.run_once() == "budget_spent"
        assert used(daemon) == 5
    with freeze_time("2026-05-13 23:59:59", tick=True):
        assert daemon.run_once() == "budget_spent"
        assert daemon.store.get_task(6).state == "queued"
    with freeze_time("2026-05-14 00:00:00", tick=True):
        assert used(daemon) == 0
        assert daemon.run_once() == "session"
        assert [s.task_id for s in daemon.store.sessions_on_day("2026-05-14")] == [6]
        assert used(daemon) == 1
    assert len(daemon.store.sessions_on_day("2026-05-13")) == 5


def test_sessions_at_2359_and_0000_count_on_different_days(daemon: Daemon) -> None:
    daemon.store.add_task("late", "[scenario:tool_turns:1]")
    daemon.store.add_task("early", "[scenario:tool_turns:1]")
    with freeze_time("2026-05-13 23:59:00", tick=True):
        daemon.run_once()
    with freeze_time("2026-05-14 00:00:00", tick=True):
        daemon.run_once()
        assert used(daemon) == 1
    assert daemon.store.sessions_used("2026-05-13") == 1
    assert daemon.store.sessions_used("2026-05-14") == 1
    assert [s.day for s in (daemon.store.get_session(1), daemon.store.get_session(2))] == [
        "2026-05-13",
        "2026-05-14",
    ]


def test_the_budget_survives_a_restart(daemon: Daemon) -> None:
    for index in range(6):
        daemon.store.add_task(f"task {index}", "[scenario:tool_turns:1]")
    cfg = daemon.cfg
    with freeze_time("2026-05-13 10:00:00", tick=True):
        for _ in range(5):
            daemon.run_once()
        with Store(cfg.store_path) as reopened:
            metrics = Metrics(cfg.max_turns, cfg.daily_sessions, snapshot=reopened.snapshot)
            restarted = Daemon(cfg, reopened, metrics, Notifier(environ={}))
            assert restarted.recover() == []
            assert restarted.run_once() == "budget_spent"
            assert metrics.registry.get_sample_value("jada_agent_daily_sessions_used") == 5
