"""The seed's day (May 13, UTC) reproduced with the real session child and the Claude simulator.

From the incident report: session 1 (00:00) hit the 30-turn limit, exit 1; session 2 (00:02)
completed and created a needs-you task; session 3 (00:05) hit the 30-turn limit, exit 1; then
no task was runnable and the daemon idled, with 3 of 5 sessions used.

The queue: task 1 refactors the crew page generator (more than 30 turns of work), task 2
clears the e-signature blockers and asks a person which provider to use. Fairness runs task 2
between task 1's two sessions. With max_attempts = 2, task 1's second max_turns exit parks it
in needs_you for a person to split or guide, which is what leaves nothing runnable; the
question from session 2 waits there beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time
from helpers_daemon import daemon_for, load, write_config

from orchestrator.daemon import Daemon
from simulators.claude import ClaudeSimulator


@pytest.fixture
def daemon(tmp_path: Path, claude: ClaudeSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    # The real session child, reaching the simulator through the anthropic SDK's base_url.
    monkeypatch.delenv("JADA_SESSION_COMMAND", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-seed-day")
    cfg_path = write_config(
        tmp_path,
        max_turns=30,
        daily_sessions=5,
        max_attempts=2,
        anthropic_base_url=claude.base_url,
        anthropic_max_retries=0,
    )
    cfg = load(cfg_path)
    with daemon_for(cfg) as daemon:
        yield daemon


def test_the_seed_day(daemon: Daemon, claude: ClaudeSimulator) -> None:
    store = daemon.store
    refactor = store.add_task(
        "Refactor the crew page generator",
        "[scenario:tool_forever] Split the generator into page components.",
    )
    blockers = store.add_task(
        "Clear the e-signature and crew page generator blockers",
        "[scenario:request_human] Fix the e-signature flow blocking the crew pages.",
    )
    steps = []
    for clock in ("2026-05-13 00:00:00", "2026-05-13 00:02:00", "2026-05-13 00:05:00", "2026-05-13 00:07:00"):
        with freeze_time(clock, tick=True):
            steps.append(daemon.run_once())
    assert steps == ["session", "session", "session", "idle"]

    sessions = store.sessions_on_day("2026-05-13")
    assert [(s.task_id, s.turns, s.exit_reason, s.exit_code) for s in sessions] == [
        (refactor, 30, "max_turns", 1),
        (blockers, 2, "completed", 0),
        (refactor, 30, "max_turns", 1),
    ]
    assert [s.id for s in sessions] == [1, 2, 3]

    (question,) = [t for t in store.list_tasks("needs_you") if t.parent_id == blockers]
    assert question.question == "Which signing provider should the e-signature flow use?"
    assert store.get_task(blockers).state == "done"
    parked = store.get_task(refactor)
    assert (parked.state, parked.attempts) == ("needs_you", 2)
    assert "Session 1 ended with max_turns after 30 turns" in parked.progress
    assert store.next_runnable_task() is None
    # Session 3 continued from session 1's progress: it was in its opening message.
    openings = {body["messages"][0]["content"] for body in claude.messages_bodies()}
    continued = [
        text for text in openings if text.startswith(f"Task {refactor}:") and "Session 1 ended" in text
    ]
    assert len(continued) == 1
    assert "Progress from earlier sessions" in continued[0]

    get = daemon.metrics.registry.get_sample_value
    assert get("jada_agent_sessions_started_total") == 3
    assert get("jada_agent_session_exits_total", {"reason": "max_turns"}) == 2
    assert get("jada_agent_session_exits_total", {"reason": "completed"}) == 1
    assert get("jada_agent_session_exits_total", {"reason": "error"}) == 0
    assert get("jada_agent_session_turns_bucket", {"reason": "max_turns", "le": "29.0"}) == 0
    assert get("jada_agent_session_turns_bucket", {"reason": "max_turns", "le": "30.0"}) == 2
    with freeze_time("2026-05-13 14:30:00"):
        assert get("jada_agent_daily_sessions_used") == 3
    assert get("jada_agent_daily_session_limit") == 5
    assert get("jada_agent_tasks", {"state": "needs_you"}) == 2
    waiting_since = [t.needs_you_since for t in store.list_tasks("needs_you")]
    assert get("jada_agent_needs_you_oldest_timestamp_seconds") == min(waiting_since)
    model = {"model": daemon.cfg.model}
    assert get("jada_agent_llm_requests_total", {**model, "outcome": "success"}) == 62
    assert get("jada_agent_llm_tokens_total", {**model, "token_type": "cache_read"}) > 0
