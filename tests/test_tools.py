"""The agent's tools: workspace confinement, the editor, bash limits and the task tools."""

from __future__ import annotations

import os
import time

import pytest

from orchestrator.store import Store
from orchestrator.tools import (
    TextEditor,
    Toolbox,
    ToolError,
    cap_output,
    confine,
    run_bash,
    tool_definitions,
)


@pytest.fixture
def workspace(tmp_path):
    path = tmp_path / "workspaces" / "task-1"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "store.db") as store:
        yield store


def test_paths_inside_the_workspace_resolve_there(workspace):
    assert confine(workspace, "notes.md") == workspace.resolve() / "notes.md"
    assert confine(workspace, "a/../b.txt") == workspace.resolve() / "b.txt"
    assert confine(workspace, str(workspace / "x")) == workspace.resolve() / "x"
    assert confine(workspace, ".") == workspace.resolve()


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../task-2/x", ""])
def test_paths_outside_the_workspace_are_refused(workspace, path):
    with pytest.raises(ToolError):
        confine(workspace, path)


def test_a_symlink_pointing_outside_the_workspace_is_refused(workspace, tmp_path):
    (tmp_path / "secret").write_text("s3cret")
    (workspace / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(ToolError, match="outside the task workspace"):
        confine(workspace, "link")


def test_cap_output_keeps_the_limit_and_says_what_was_dropped():
    assert cap_output(b"hello", 10) == "hello"
    assert cap_output(b"x" * 25, 10) == "x" * 10 + "\n[output truncated: 15 more bytes]"


def test_the_last_tool_is_the_cache_breakpoint_and_client_tools_use_anthropics_types():
    tools = tool_definitions()
    assert tools[0] == {"type": "bash_20250124", "name": "bash"}
    assert tools[1] == {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}
    assert [t["name"] for t in tools[2:]] == ["request_human", "create_task", "complete_task"]
    assert tools[-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in t for t in tools[:-1])


def test_editor_creates_views_replaces_and_inserts(workspace):
    editor = TextEditor(workspace, 16384)
    editor.run({"command": "create", "path": "src/app.py", "file_text": "a = 1\nb = 2\n"})
    assert editor.run({"command": "view", "path": "src/app.py"}).content == "     1\ta = 1\n     2\tb = 2"
    editor.run({"command": "str_replace", "path": "src/app.py", "old_str": "b = 2", "new_str": "b = 3"})
    editor.run({"command": "insert", "path": "src/app.py", "insert_line": 1, "insert_text": "c = 0"})
    assert (workspace / "src/app.py").read_text() == "a = 1\nc = 0\nb = 3\n"
    view = editor.run({"command": "view", "path": "src/app.py", "view_range": [2, 2]}).content
    assert view == "     2\tc = 0"
    assert editor.run({"command": "view", "path": "."}).content == "src/\nsrc/app.py"


def test_editor_lists_two_levels_and_refuses_a_bad_view_range(workspace):
    editor = TextEditor(workspace, 16384)
    (workspace / "a/b/c").mkdir(parents=True)
    (workspace / "a/b/c/deep.txt").write_text("x\n")
    (workspace / "top.txt").write_text("one\ntwo\n")
    (workspace / ".git").mkdir()
    assert editor.run({"command": "view", "path": "."}).content == "a/\na/b/\ntop.txt"
    for bad in (["1", "2"], [1], [2, 9], True):
        with pytest.raises(ToolError, match="view_range"):
            editor.run({"command": "view", "path": "top.txt", "view_range": bad})
    assert editor.run({"command": "view", "path": "top.txt", "view_range": [2, -1]}).content == "     2\ttwo"


def test_editor_str_replace_needs_exactly_one_match(workspace):
    editor = TextEditor(workspace, 16384)
    (workspace / "f.txt").write_text("x x")
    with pytest.raises(ToolError, match="Found 2 matches"):
        editor.run({"command": "str_replace", "path": "f.txt", "old_str": "x", "new_str": "y"})
    with pytest.raises(ToolError, match="No match"):
        editor.run({"command": "str_replace", "path": "f.txt", "old_str": "z", "new_str": "y"})
    assert (workspace / "f.txt").read_text() == "x x"


def test_bash_runs_in_the_workspace_without_the_api_key(workspace, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    result = run_bash("pwd; echo key=${ANTHROPIC_API_KEY:-none}; echo home=$HOME", workspace, 10, 4096)
    assert result.is_error is False
    assert result.content.splitlines() == [str(workspace), "key=none", f"home={workspace}"]


def test_bash_reports_a_failing_command_as_an_error_with_its_exit_code(workspace):
    result = run_bash("echo oops >&2; exit 3", workspace, 10, 4096)
    assert result.is_error is True
    assert result.content == "oops\n\n[exit code 3]"


def test_bash_output_is_capped(workspace):
    result = run_bash("head -c 100000 /dev/zero | tr '\\0' 'a'", workspace, 10, 1000)
    assert result.content.startswith("a" * 1000 + "\n[output truncated: 99000 more bytes]")


def test_bash_timeout_kills_the_command_and_its_children(workspace):
    result = run_bash("sleep 60 & echo $! > child.pid; sleep 60", workspace, 0.5, 4096)
    assert result.is_error is True
    assert "timed out after 0.5s" in result.content
    child = int((workspace / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.02)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def toolbox(workspace, store, **kwargs):
    task_id = store.add_task("parent", "do things")
    return Toolbox(task_id=task_id, workspace=workspace, store=store, **kwargs), task_id


def test_a_path_outside_the_workspace_is_an_error_result_not_a_crash(workspace, store):
    box, _ = toolbox(workspace, store)
    result = box.run("str_replace_based_edit_tool", {"command": "view", "path": "/etc/passwd"})
    assert result.is_error is True
    assert "outside the task workspace" in result.content
    assert box.run("str_replace_based_edit_tool", {"command": "explode"}).is_error is True
    assert box.run("no_such_tool", {}).is_error is True
    assert box.run("bash", "not an object").is_error is True
    unwritable = {"command": "create", "path": "bad.txt", "file_text": "\ud800"}
    assert box.run("str_replace_based_edit_tool", unwritable).is_error is True
    assert box.run("str_replace_based_edit_tool", {"command": "view", "path": "nul\x00byte"}).is_error is True


def test_request_human_creates_a_needs_you_task_linked_to_the_parent(workspace, store):
    box, task_id = toolbox(workspace, store)
    result = box.run("request_human", {"question": "Which provider?"})
    assert result.is_error is False
    [question] = [t for t in store.list_tasks() if t.id != task_id]
    assert (question.state, question.parent_id, question.question) == (
        "needs_you",
        task_id,
        "Which provider?",
    )
    assert question.id in store.get_task(task_id).depends_on


def test_create_task_makes_a_subtask_and_refuses_unknown_dependencies(workspace, store):
    box, task_id = toolbox(workspace, store)
    result = box.run("create_task", {"title": "sub", "prompt": "do the sub part", "priority": 2})
    sub = next(t for t in store.list_tasks() if t.id != task_id)
    assert result.content == f"Created task {sub.id}."
    assert (sub.parent_id, sub.priority, sub.state) == (task_id, 2, "queued")
    refused = box.run("create_task", {"title": "x", "prompt": "y", "depends_on": [999]})
    assert refused.is_error is True
    assert "999" in refused.content
    assert len(store.list_tasks()) == 2


def test_complete_task_records_the_summary(workspace, store):
    box, _ = toolbox(workspace, store)
    assert box.completed_summary is None
    box.run("complete_task", {"summary": "All done."})
    assert box.completed_summary == "All done."
    assert box.run("complete_task", {}).is_error is True
    assert box.calls == {"complete_task": 2}


def test_bash_through_the_toolbox_uses_the_configured_limits(workspace, store):
    box, _ = toolbox(workspace, store, timeout=0.3, limit=5)
    assert box.run("bash", {"command": "echo 123456789"}).content.startswith("12345\n[output truncated")
    assert "timed out" in box.run("bash", {"command": "sleep 5"}).content
    assert box.run("bash", {"restart": True}).content == "tool has been restarted."
    assert os.path.isdir(workspace)
