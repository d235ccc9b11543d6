"""The agent's tools: Anthropic's bash and text editor client tools, and the task tools.

Bash and the editor are confined to the task's workspace directory: every path the editor
touches is resolved (symlinks included) and must stay inside it, and bash runs with the
workspace as its working directory and home. A path outside is a tool error handed back to
the model (``is_error``), never a crash. Bash is not a sandbox: the service's systemd
hardening is what keeps a command from reaching the rest of the host.

The real bash tool keeps one shell alive across calls; here each command runs in a fresh
``bash -c`` in the workspace, so ``cd`` and shell variables do not carry over (files do).
The tool's description to the model is Anthropic's own, so the model is not told this;
``restart`` is accepted and is a no-op.

The task tools (request_human, create_task, complete_task) act on the store through the
small ``TaskStore`` protocol, so they can be exercised without a daemon.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.store import StoreError

BASH = "bash"
EDITOR = "str_replace_based_edit_tool"
REQUEST_HUMAN = "request_human"
CREATE_TASK = "create_task"
COMPLETE_TASK = "complete_task"

# Environment handed to bash: enough to work, nothing secret (no API key, no credentials).
_SAFE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ", "TERM")


class ToolError(Exception):
    """A failed tool call, reported to the model as a tool_result with is_error."""


class TaskStore(Protocol):
    """The part of the store the task tools use."""

    def request_human(self, parent_id: int, question: str) -> int: ...

    def add_task(
        self,
        title: str,
        prompt: str,
        priority: int = 0,
        depends_on: Any = (),
        parent_id: int | None = None,
        state: str = "queued",
        question: str | None = None,
    ) -> int: ...


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model in a tool_result block."""

    content: str
    is_error: bool = False


def tool_definitions() -> list[dict[str, Any]]:
    """Return the tool list for the Messages API, the last tool marked as a cache breakpoint."""
    tools: list[dict[str, Any]] = [
        {"type": "bash_20250124", "name": BASH},
        {"type": "text_editor_20250728", "name": EDITOR},
        {
            "name": REQUEST_HUMAN,
            "description": (
                "Ask a person a question you cannot answer yourself (a decision, a credential, an "
                "approval). Creates a needs-you item; this task waits for the answer."
            ),
            "input_schema": {
                "type": "object",
                "properties": {
                    "question": {"type": "string", "description": "The question, self-contained."}
                },
                "required": ["question"],
            },
        },
        {
            "name": CREATE_TASK,
            "description": "Queue a subtask of this task for a later session.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "prompt": {
                        "type": "string",
                        "description": "Everything the subtask's session needs to know.",
                    },
                    "priority": {"type": "integer", "description": "Higher runs first; default 0."},
                    "depends_on": {"type": "array", "items": {"type": "integer"}, "description": "Task ids."},
                },
                "required": ["title", "prompt"],
            },
        },
        {
            "name": COMPLETE_TASK,
            "description": "Finish this task and end the session, with a short summary of what was done.",
            "input_schema": {
                "type": "object",
                "properties": {"summary": {"type": "string"}},
                "required": ["summary"],
            },
        },
    ]
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools


def confine(workspace: Path, path: str) -> Path:
    """Resolve ``path`` (relative to the workspace, or absolute) and refuse anything outside it."""
    if not isinstance(path, str) or not path:
        raise ToolError("path is required")
    root = workspace.resolve()
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise ToolError(f"{path} is outside the task workspace {root}; use a path inside it")
    return resolved


def cap_output(data: bytes, limit: int, dropped: int = 0) -> str:
    """Decode ``data`` and cut it to ``limit`` bytes, saying how much was left out."""
    kept = data[:limit]
    dropped += len(data) - len(kept)
    text = kept.decode("utf-8", errors="replace")
    if dropped:
        text += f"\n[output truncated: {dropped} more bytes]"
    return text


def run_bash(command: str, workspace: Path, timeout: float, limit: int) -> ToolResult:
    """Run ``command`` with ``bash -c`` in the workspace; kill it and its children at ``timeout``."""
    env = {key: os.environ[key] for key in _SAFE_ENV_KEYS if key in os.environ}
    env["HOME"] = str(workspace)
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    kept = bytearray()
    dropped = 0
    deadline = time.monotonic() + timeout
    timed_out = False
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            room = max(0, limit - len(kept))
            kept += chunk[:room]
            dropped += len(chunk) - min(room, len(chunk))
    if timed_out:
        # The whole process group: a command's background children must not outlive it.
        _kill_group(process)
    process.stdout.close()
    code = process.wait()
    output = cap_output(bytes(kept), limit, dropped)
    if timed_out:
        return ToolResult(f"{output}\n[command timed out after {timeout:g}s and was killed]", is_error=True)
    if code != 0:
        return ToolResult(f"{output}\n[exit code {code}]".lstrip("\n"), is_error=True)
    return ToolResult(output)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class TextEditor:
    """Anthropic's text editor tool (text_editor_20250728) over one workspace."""

    def __init__(self, workspace: Path, limit: int) -> None:
        self.workspace = workspace
        self.limit = limit

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        """Dispatch one editor command; raise ToolError for a bad call."""
        command = tool_input.get("command")
        handler = {
            "view": self.view,
            "create": self.create,
            "str_replace": self.str_replace,
            "insert": self.insert,
        }.get(str(command))
        if handler is None:
            raise ToolError(f"unknown command {command!r}; use view, create, str_replace or insert")
        return ToolResult(handler(tool_input))

    def view(self, tool_input: dict[str, Any]) -> str:
        """Show a file with line numbers, or a directory two levels deep."""
        path = confine(self.workspace, tool_input.get("path", ""))
        if path.is_dir():
            return self._cap("\n".join(self._listing(path, depth=2)) or "(empty directory)")
        lines = self._read(path).splitlines()
        start, end = 1, len(lines)
        view_range = tool_input.get("view_range")
        if view_range is not None:
            if not (
                isinstance(view_range, list)
                and len(view_range) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in view_range)
            ):
                raise ToolError("view_range must be [start_line, end_line], two integers")
            start, end = view_range
            end = len(lines) if end == -1 else end
            if not 1 <= start <= max(end, 1) or end > len(lines):
                raise ToolError(f"view_range {view_range} is outside the file's {len(lines)} lines")
        return self._cap("\n".join(f"{n:6}\t{lines[n - 1]}" for n in range(start, end + 1)))

    def _listing(self, directory: Path, depth: int) -> list[str]:
        # Walk only as deep as shown: a workspace may hold a huge node_modules.
        root = self.workspace.resolve()
        entries = []
        for child in sorted(directory.iterdir()):
            if child.name.startswith("."):
                continue
            is_dir = child.is_dir() and not child.is_symlink()
            entries.append(str(child.relative_to(root)) + ("/" if is_dir else ""))
            if is_dir and depth > 1:
                entries.extend(self._listing(child, depth - 1))
        return entries

    def create(self, tool_input: dict[str, Any]) -> str:
        """Write a new file (or overwrite one) with ``file_text``."""
        path = confine(self.workspace, tool_input.get("path", ""))
        text = tool_input.get("file_text")
        if not isinstance(text, str):
            raise ToolError("file_text is required for create")
        if path.is_dir():
            raise ToolError(f"{tool_input['path']} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return f"File created successfully at: {tool_input['path']}"

    def str_replace(self, tool_input: dict[str, Any]) -> str:
        """Replace the one occurrence of ``old_str`` with ``new_str``."""
        path = confine(self.workspace, tool_input.get("path", ""))
        old, new = tool_input.get("old_str"), tool_input.get("new_str", "")
        if not isinstance(old, str) or not old or not isinstance(new, str):
            raise ToolError("old_str (non-empty) and new_str are required for str_replace")
        text = self._read(path)
        count = text.count(old)
        if count == 0:
            raise ToolError("No match found for replacement. Check old_str, including whitespace.")
        if count > 1:
            raise ToolError(f"Found {count} matches for replacement text. Make old_str unique.")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return "Successfully replaced text at exactly one location."

    def insert(self, tool_input: dict[str, Any]) -> str:
        """Insert ``insert_text`` after line ``insert_line`` (0 for the top)."""
        path = confine(self.workspace, tool_input.get("path", ""))
        new = tool_input.get("insert_text", tool_input.get("new_str"))
        line = tool_input.get("insert_line")
        if not isinstance(new, str) or isinstance(line, bool) or not isinstance(line, int):
            raise ToolError("insert_line (integer) and insert_text are required for insert")
        lines = self._read(path).splitlines(keepends=True)
        if not 0 <= line <= len(lines):
            raise ToolError(f"insert_line {line} is outside the file's {len(lines)} lines")
        if lines and not lines[-1].endswith("\n") and line == len(lines):
            lines[-1] += "\n"
        lines[line:line] = [new if new.endswith("\n") else new + "\n"]
        path.write_text("".join(lines), encoding="utf-8")
        return f"Text inserted after line {line}."

    def _read(self, path: Path) -> str:
        if not path.is_file():
            raise ToolError(f"{path.relative_to(self.workspace.resolve())} does not exist or is not a file")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path.name} is not UTF-8 text") from None

    def _cap(self, text: str) -> str:
        return cap_output(text.encode("utf-8"), self.limit)


@dataclass
class Toolbox:
    """Run the tool calls of one session for one task."""

    task_id: int
    workspace: Path
    store: TaskStore
    timeout: float = 60.0
    limit: int = 16384
    completed_summary: str | None = None
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)
        self._editor = TextEditor(self.workspace, self.limit)

    def run(self, name: str, tool_input: Any) -> ToolResult:
        """Run one tool call; any failure becomes an error result for the model."""
        self.calls[name] = self.calls.get(name, 0) + 1
        started = time.perf_counter()
        try:
            if not isinstance(tool_input, dict):
                raise ToolError("tool input must be an object")
            return self._dispatch(name, tool_input)
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        except OSError as exc:
            return ToolResult(f"{type(exc).__name__}: {exc.strerror or exc}", is_error=True)
        except ValueError as exc:
            # Text the filesystem cannot take (a lone surrogate, a NUL in a path).
            return ToolResult(f"{type(exc).__name__}: {exc}", is_error=True)
        finally:
            self.seconds += time.perf_counter() - started

    def _dispatch(self, name: str, tool_input: dict[str, Any]) -> ToolResult:
        if name == BASH:
            if tool_input.get("restart"):
                return ToolResult("tool has been restarted.")
            command = tool_input.get("command")
            if not isinstance(command, str) or not command.strip():
                raise ToolError("command is required")
            return run_bash(command, self.workspace, self.timeout, self.limit)
        if name == EDITOR:
            return self._editor.run(tool_input)
        if name == REQUEST_HUMAN:
            question = _required_text(tool_input, "question")
            needs_you_id = self.store.request_human(self.task_id, question)
            return ToolResult(f"Asked a human (needs-you task {needs_you_id}). Their answer will come later.")
        if name == CREATE_TASK:
            return ToolResult(f"Created task {self._create_task(tool_input)}.")
        if name == COMPLETE_TASK:
            self.completed_summary = _required_text(tool_input, "summary")
            return ToolResult("Task marked complete.")
        raise ToolError(f"unknown tool {name!r}")

    def _create_task(self, tool_input: dict[str, Any]) -> int:
        title = _required_text(tool_input, "title")
        prompt = _required_text(tool_input, "prompt")
        priority = tool_input.get("priority", 0)
        depends_on = tool_input.get("depends_on", [])
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ToolError("priority must be an integer")
        if not isinstance(depends_on, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in depends_on
        ):
            raise ToolError("depends_on must be a list of task ids")
        try:
            return self.store.add_task(
                title, prompt, priority=priority, depends_on=tuple(depends_on), parent_id=self.task_id
            )
        except StoreError as exc:
            # The store refuses unknown ids and cycles; the model can fix its call.
            raise ToolError(f"could not create the task: {exc}") from None


def _required_text(tool_input: dict[str, Any], key: str) -> str:
    value = tool_input.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"{key} is required")
    return value
