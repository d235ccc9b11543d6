"""`jada-agent session run` as the daemon starts it: a child process, events on a pipe, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator.store import Store

API_KEY = "sk-ant-cli-test-key"


@pytest.fixture
def setup(tmp_path, claude):
    config = tmp_path / "config.toml"
    config.write_text(
        "[orchestrator]\n"
        f'state_dir = "{tmp_path}"\n'
        'model = "claude-sonnet-4-6"\n'
        f'anthropic_base_url = "{claude.base_url}"\n'
        "anthropic_max_retries = 1\n"
        "max_turns = 3\n"
    )
    return config, tmp_path / "jada-agent.db"


def run_child(config, task_id, session_id=None, api_key=API_KEY):
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "orchestrator", "--config", str(config), "session", "run", str(task_id)]
    command += ["--events-fd", str(write_fd)]
    if session_id is not None:
        command += ["--session-id", str(session_id)]
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env["JADA_JOURNAL_SOCKET"] = "/nonexistent/journal.socket"
    if api_key:
        env["ANTHROPIC_API_KEY"] = api_key
    try:
        child = subprocess.run(
            command, pass_fds=(write_fd,), env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd) as events:
        lines = [json.loads(line) for line in events.read().splitlines()]
    return child, lines


def new_session(store_path, prompt):
    with Store(store_path) as store:
        task_id = store.add_task("Crew pages", prompt)
        return task_id, store.start_session(task_id, day_limit=5)


def test_a_completed_session_exits_0_with_its_result_line_last(setup):
    config, store_path = setup
    task_id, session_id = new_session(store_path, "[scenario:tool_turns:1]")
    child, events = run_child(config, task_id, session_id)
    assert child.returncode == 0, child.stderr
    assert child.stdout == ""
    assert [e["event"] for e in events] == ["llm_request", "turn", "llm_request", "turn", "result"]
    assert events[-1]["reason"] == "completed"
    with Store(store_path) as store:
        assert store.get_session(session_id).turns == 2


def test_hitting_max_turns_exits_1_and_says_so_gracefully(setup):
    config, store_path = setup
    task_id, session_id = new_session(store_path, "[scenario:tool_forever]")
    child, events = run_child(config, task_id, session_id)
    assert child.returncode == 1
    assert events[-1]["reason"] == "max_turns" and events[-1]["turns"] == 3
    assert (
        f"[session] task {task_id} session {session_id} loop ended: max_turns after 3 turns" in child.stderr
    )
    assert "Traceback" not in child.stderr


def test_an_authentication_error_exits_2_without_showing_the_key(setup):
    config, store_path = setup
    task_id, session_id = new_session(store_path, "[scenario:unauthorized]")
    child, events = run_child(config, task_id, session_id)
    assert child.returncode == 2
    assert events[-1]["reason"] == "error"
    assert "authentication_error" in child.stderr
    assert API_KEY not in child.stderr + child.stdout + json.dumps(events)


def test_a_missing_api_key_exits_2_with_the_fix(setup):
    config, store_path = setup
    task_id, _ = new_session(store_path, "anything")
    child, events = run_child(config, task_id, api_key=None)
    assert child.returncode == 2
    assert "ANTHROPIC_API_KEY is not set" in child.stderr
    assert events == [
        {
            "event": "result",
            "reason": "error",
            "turns": 0,
            "summary": "ANTHROPIC_API_KEY is not set; put it in the service's environment file",
            "last_text": "",
        }
    ]


def test_an_unknown_task_exits_2_naming_the_id(setup):
    config, store_path = setup
    new_session(store_path, "anything")
    child, events = run_child(config, 999)
    assert child.returncode == 2
    assert "no task with id 999" in child.stderr
    assert events[-1]["reason"] == "error"
