"""The session loop through the real SDK against the Claude API simulator, with a real store."""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest

from orchestrator import log
from orchestrator.config import Config
from orchestrator.daemon import parse_event
from orchestrator.metrics import LLM_OUTCOMES, Metrics
from orchestrator.session import CONTINUE_PROMPT, EventSink, SessionResult, run_session
from orchestrator.store import Store

MODEL = "claude-sonnet-4-6"
API_KEY = "sk-ant-test-key-never-logged"


@dataclass
class Run:
    result: SessionResult
    events: list[dict[str, Any]]
    store: Store
    task_id: int
    session_id: int
    bodies: list[dict[str, Any]]
    config: Config

    def calls(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "llm_request"]


@pytest.fixture
def session(tmp_path, claude):
    stores = []

    def run(prompt: str, **overrides: Any) -> Run:
        settings = {
            "path": tmp_path / "config.toml",
            "state_dir": tmp_path,
            "model": MODEL,
            "anthropic_base_url": claude.base_url,
            "anthropic_max_retries": 2,
            "anthropic_timeout_seconds": 10.0,
            "tool_timeout_seconds": 10.0,
            **overrides,
        }
        config = Config(**settings)
        store = Store(config.store_path)
        stores.append(store)
        task_id = store.add_task("Crew pages", f"Build the crew pages. {prompt}")
        session_id = store.start_session(task_id, day_limit=100)
        stream = io.StringIO()
        result = run_session(config, store, task_id, session_id, EventSink(stream), API_KEY)
        events = [json.loads(line) for line in stream.getvalue().splitlines()]
        return Run(result, events, store, task_id, session_id, claude.messages_bodies(), config)

    yield run
    for store in stores:
        store.close()


def test_tool_turns_then_end_turn_completes_with_every_turn_recorded(session):
    run = session("[scenario:tool_turns:3]")
    assert (run.result.reason, run.result.exit_code, run.result.turns) == ("completed", 0, 4)
    assert [e["event"] for e in run.events] == ["llm_request", "turn"] * 4 + ["result"]
    assert run.events[-1] == {
        "event": "result",
        "reason": "completed",
        "turns": 4,
        "summary": run.result.summary,
        "last_text": "The task is done.",
    }
    assert [e["turns"] for e in run.events if e["event"] == "turn"] == [1, 2, 3, 4]
    row = run.store.get_session(run.session_id)
    assert row.turns == 4
    totals = {
        k: sum(c["usage"][k] for c in run.calls())
        for k in ("input", "output", "cache_read", "cache_creation")
    }
    assert row.usage == totals
    workspace = run.config.workspaces_dir / f"task-{run.task_id}"
    assert (workspace / "notes.md").read_text() == "# Notes\n\nstep 1\n"
    results = [m["content"][0] for m in run.bodies[-1]["messages"] if m["role"] == "user"][1:]
    assert [r["content"] for r in results] == [
        "File created successfully at: notes.md",
        "     1\t# Notes\n     2\t\n     3\tstep 1",
        "step 3\nnotes.md\n",
    ]


def test_cached_prefix_stays_valid_turn_after_turn(session):
    run = session("[scenario:tool_turns:4]")
    bodies = run.bodies
    assert len(bodies) == 5
    assert all(b["system"] == bodies[0]["system"] and b["tools"] == bodies[0]["tools"] for b in bodies)
    assert bodies[0]["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert bodies[0]["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    for earlier, later in itertools.pairwise(bodies):
        assert later["messages"][: len(earlier["messages"])] == earlier["messages"]
    usage = [c["usage"] for c in run.calls()]
    assert usage[0]["cache_creation"] > 0 and usage[0]["cache_read"] == 0
    assert all(u["cache_read"] == usage[0]["cache_creation"] for u in usage[1:])


def test_tool_use_forever_stops_at_max_turns_with_exit_code_1(session):
    run = session("[scenario:tool_forever]")
    assert (run.result.reason, run.result.exit_code, run.result.turns) == ("max_turns", 1, 30)
    assert len(run.bodies) == 30
    assert "stopped at the 30-turn limit" in run.result.summary
    assert run.result.last_text == "Step 30: continuing the task."
    assert run.store.get_session(run.session_id).turns == 30


def test_request_human_then_complete_task_leaves_a_linked_needs_you_task(session):
    run = session("[scenario:request_human]")
    assert (run.result.reason, run.result.turns) == ("completed", 2)
    assert run.result.summary == "Unblocked the e-signature work and asked a human about the provider."
    [question] = run.store.list_tasks(state="needs_you")
    assert question.parent_id == run.task_id
    assert question.question == "Which signing provider should the e-signature flow use?"
    answer = run.bodies[1]["messages"][-1]["content"][0]
    assert answer["type"] == "tool_result"
    assert f"needs-you task {question.id}" in answer["content"]


def test_pause_turn_sends_the_paused_content_back_to_continue(session):
    run = session("[scenario:pause_turn]")
    assert (run.result.reason, run.result.turns) == ("completed", 2)
    resumed = run.bodies[1]["messages"]
    assert resumed[-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Working through a long step..."}],
    }


def test_max_tokens_in_text_asks_the_model_to_continue(session):
    run = session("[scenario:max_tokens]")
    assert (run.result.reason, run.result.turns) == ("completed", 2)
    assert run.bodies[1]["messages"][-1] == {
        "role": "user",
        "content": [{"type": "text", "text": CONTINUE_PROMPT}],
    }


def test_a_tool_call_cut_off_by_max_tokens_is_retried_with_a_larger_limit(session):
    run = session("[scenario:max_tokens_tool]", max_tokens=4096)
    assert (run.result.reason, run.result.turns) == ("completed", 3)
    assert [b["max_tokens"] for b in run.bodies] == [4096, 8192, 8192]
    # The cut-off answer never entered the history.
    assert len(run.bodies[1]["messages"]) == 1


@pytest.mark.parametrize(
    ("scenario", "detail"),
    [
        ("refusal", "the model refused (category cyber)"),
        ("context_exceeded", "the conversation exceeded the model's context window"),
    ],
)
def test_refusal_and_context_window_end_the_session_as_an_error(session, scenario, detail):
    run = session(f"[scenario:{scenario}]")
    assert (run.result.reason, run.result.exit_code, run.result.detail) == ("error", 2, detail)
    assert detail in run.result.summary
    assert run.events[-1]["reason"] == "error"


# scenario, overrides, outcome, attempts, session reason
API_FAILURES = [
    ("rate_limited", {}, "success", 2, "completed"),
    ("overloaded:1", {}, "success", 2, "completed"),
    ("overloaded", {}, "overloaded", 3, "error"),
    ("server_error:1", {}, "success", 2, "completed"),
    ("server_error", {}, "server_error", 3, "error"),
    ("unauthorized", {}, "authentication_error", 1, "error"),
    ("forbidden", {}, "permission_error", 1, "error"),
    ("spend_limit", {}, "rate_limited", 1, "error"),
    ("garbage", {}, "bad_response", 1, "error"),
    ("truncated", {"anthropic_max_retries": 1}, "connection_error", 2, "error"),
    ("slow:30", {"anthropic_max_retries": 0, "anthropic_timeout_seconds": 0.3}, "timeout", 1, "error"),
]


@pytest.mark.parametrize(
    ("scenario", "overrides", "outcome", "attempts", "reason"), API_FAILURES, ids=[f[0] for f in API_FAILURES]
)
def test_every_api_failure_ends_as_designed_and_is_counted(
    session, scenario, overrides, outcome, attempts, reason
):
    run = session(f"[scenario:{scenario}]", **overrides)
    [call] = run.calls()
    assert (call["outcome"], call["attempts"]) == (outcome, attempts)
    assert (run.result.reason, run.result.exit_code) == (reason, 0 if reason == "completed" else 2)
    if reason == "error":
        assert run.result.detail.startswith(f"{outcome}: ")
        assert run.store.get_session(run.session_id).turns == 0
    metrics = Metrics(max_turns=30, daily_sessions=5, models=(MODEL,))
    for event in run.events:
        parsed = parse_event(json.dumps(event).encode())
        assert parsed is not None, event
        if parsed["event"] == "llm_request":
            metrics.llm_request(
                parsed["model"], parsed["outcome"], parsed["duration_seconds"], parsed["usage"]
            )
    sample = metrics.registry.get_sample_value
    assert sample("jada_agent_llm_requests_total", {"model": MODEL, "outcome": outcome}) == 1
    counts = (sample("jada_agent_llm_requests_total", {"model": MODEL, "outcome": o}) for o in LLM_OUTCOMES)
    assert sum(counts) == 1


def test_the_api_key_appears_in_no_event_and_no_log_line(session):
    stream = io.StringIO()
    log.setup(stream=stream)
    try:
        run = session("[scenario:unauthorized]")
    finally:
        log.setup(stream=io.StringIO())
    logged = stream.getvalue()
    assert "authentication_error" in logged
    assert "JADA_EVENT=llm_error" in logged
    assert API_KEY not in logged
    assert API_KEY not in json.dumps(run.events)
