"""Claude API failures through the real session child: each ends as designed and is counted.

The session's own tests (tests/test_session_*.py) cover every failure scenario at the loop
level; these check the daemon's side through the real child: the session is recorded as an
error, the task re-queued, and the call counted by outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_daemon import daemon_for, load, write_config

from orchestrator.daemon import Daemon
from simulators.claude import ClaudeSimulator


@pytest.fixture(scope="module")
def simulator() -> Iterator[ClaudeSimulator]:
    with ClaudeSimulator("end_turn", retry_after=0.01) as sim:
        yield sim


@pytest.fixture
def daemon(tmp_path: Path, simulator: ClaudeSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    monkeypatch.delenv("JADA_SESSION_COMMAND", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-failures")
    cfg = load(
        write_config(
            tmp_path,
            max_attempts=2,
            anthropic_base_url=simulator.base_url,
            anthropic_max_retries=1,
            anthropic_timeout_seconds=0.3,
        )
    )
    with daemon_for(cfg) as daemon:
        yield daemon


@pytest.mark.parametrize(
    ("scenario", "outcome"),
    [
        ("unauthorized", "authentication_error"),
        ("spend_limit", "rate_limited"),
        ("overloaded", "overloaded"),
        ("garbage", "bad_response"),
        ("slow:3", "timeout"),
    ],
)
def test_a_failing_api_ends_the_session_as_error_and_counts_the_call(
    daemon: Daemon, scenario: str, outcome: str
) -> None:
    task = daemon.store.add_task("Work", f"[scenario:{scenario}] do the work")
    daemon.run_once()
    session = daemon.store.get_session(1)
    assert (session.exit_reason, session.exit_code, session.turns) == ("error", 2, 0)
    assert daemon.store.get_task(task).state == "queued"
    get = daemon.metrics.registry.get_sample_value
    assert get("jada_agent_llm_requests_total", {"model": daemon.cfg.model, "outcome": outcome}) == 1
    assert get("jada_agent_session_exits_total", {"reason": "error"}) == 1


def test_a_rate_limit_the_sdk_retries_through_is_one_successful_call(daemon: Daemon) -> None:
    task = daemon.store.add_task("Work", "[scenario:rate_limited:1] do the work")
    daemon.run_once()
    session = daemon.store.get_session(1)
    assert (session.exit_reason, session.turns) == ("completed", 1)
    get = daemon.metrics.registry.get_sample_value
    assert get("jada_agent_llm_requests_total", {"model": daemon.cfg.model, "outcome": "success"}) == 1
    assert get("jada_agent_llm_requests_total", {"model": daemon.cfg.model, "outcome": "rate_limited"}) == 0
    assert daemon.store.get_task(task).state == "done"
