"""The daemon running the real session child against the Claude API simulator: the seed's day."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_daemon import daemon_for, load, write_config

from orchestrator.daemon import Daemon
from simulators.claude import ClaudeSimulator

MODEL = "claude-sonnet-4-6"


@pytest.fixture
def daemon(tmp_path: Path, claude: ClaudeSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    # The real child: `python -m orchestrator session run`, not the daemon tests' fake.
    monkeypatch.delenv("JADA_SESSION_COMMAND", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-daemon-test")
    monkeypatch.setenv("JADA_JOURNAL_SOCKET", str(tmp_path / "no-journal.socket"))
    cfg = load(
        write_config(
            tmp_path,
            model=MODEL,
            anthropic_base_url=claude.base_url,
            anthropic_max_retries=1,
            session_timeout_seconds=120,
        )
    )
    with daemon_for(cfg) as daemon:
        yield daemon


def sample(daemon: Daemon, name: str, **labels: str) -> float | None:
    return daemon.metrics.registry.get_sample_value(name, labels)


def test_the_seeds_three_sessions_run_through_the_real_child(daemon: Daemon, claude: ClaudeSimulator) -> None:
    store = daemon.store
    refactor = store.add_task("Page generator refactor", "[scenario:tool_forever] refactor it")
    signing = store.add_task("E-signature blockers", "[scenario:request_human] unblock it")
    crew = store.add_task("Crew page generator", "[scenario:tool_forever] build it")

    assert [daemon.run_once() for _ in range(3)] == ["session"] * 3

    sessions = store.sessions_used_today(), store.running_sessions()
    assert sessions == (3, [])
    rows = [store.get_session(i) for i in (1, 2, 3)]
    assert [(r.task_id, r.exit_reason, r.exit_code, r.turns) for r in rows] == [
        (refactor, "max_turns", 1, 30),
        (signing, "completed", 0, 2),
        (crew, "max_turns", 1, 30),
    ]
    # The system prompt and tools are the same for every task: the first session writes the
    # cache, and every later turn, in any session, reads it.
    assert rows[0].usage["cache_creation"] > 0
    assert all(r.usage["cache_read"] > 0 for r in rows)
    assert sample(daemon, "jada_agent_sessions_started_total") == 3
    assert sample(daemon, "jada_agent_session_exits_total", reason="max_turns") == 2
    assert sample(daemon, "jada_agent_session_exits_total", reason="completed") == 1
    assert sample(daemon, "jada_agent_llm_requests_total", model=MODEL, outcome="success") == 62
    [question] = store.list_tasks(state="needs_you")
    assert question.parent_id == signing
    assert store.get_task(signing).state == "done"
    assert store.get_task(refactor).state == "queued"
    assert "Session 1 ended with max_turns after 30 turns" in store.get_task(refactor).progress


def test_the_next_session_of_a_task_continues_from_its_progress(
    daemon: Daemon, claude: ClaudeSimulator
) -> None:
    task = daemon.store.add_task("Page generator refactor", "[scenario:tool_turns:1] refactor it")
    daemon.store.append_progress(
        task, "Session 0 ended with max_turns after 30 turns; last words: header next."
    )
    assert daemon.run_once() == "session"
    opening = claude.messages_bodies()[0]["messages"][0]["content"]
    assert "Progress from earlier sessions (continue from here):" in opening
    assert "last words: header next." in opening
    assert daemon.store.get_task(task).state == "done"
