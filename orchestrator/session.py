"""The session child process: one task, one Claude conversation, at most ``max_turns`` turns.

The daemon starts ``jada-agent session run TASK_ID --session-id SID --events-fd N`` after it
has spent a session of the daily budget (docs/CONTRACTS.md, "Session child process"). This
process runs the Messages API tool-use loop with the ``anthropic`` SDK (imported only here,
inside the functions that talk to the API, so the daemon stays lean), writes one JSON event
a line to fd N, records each turn's count and token usage in the session row, and exits
0 (completed), 1 (max_turns) or 2 (error).

Prompt caching: the system prompt and the last tool carry ``cache_control`` breakpoints,
and the message history is only ever appended to, so every request starts with the
previous request's prefix and the cache stays valid turn after turn.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from orchestrator import log
from orchestrator.config import Config
from orchestrator.tools import TaskStore, Toolbox, ToolResult, tool_definitions

EXIT_CODES = {"completed": 0, "max_turns": 1, "error": 2}
CONTINUE_PROMPT = "Your last answer was cut off by the output limit. Continue exactly where you stopped."
# A tool_use block cut off by max_tokens is retried with twice the limit, up to this.
MAX_TOKENS_CEILING = 64000
TEXT_EXCERPT = 2000

DEFAULT_SYSTEM_PROMPT = (
    "You are jada-agent, an autonomous engineer working through a queue of tasks on a small "
    "server. Each task has its own workspace directory; work only inside it. Use the bash and "
    "text editor tools to do the work. You have a limited number of turns per session: make "
    "steady progress, and if a task is too large, split it with create_task. When you need a "
    "person's decision, credentials or approval, call request_human with a self-contained "
    "question. When the task is done, call complete_task with a short summary."
)


class SessionStore(TaskStore, Protocol):
    """The part of the store a session uses."""

    def get_task(self, task_id: int) -> Any: ...

    def update_session_progress(self, session_id: int, turns: int, usage: dict[str, int]) -> None: ...


class SpendLimitReached(Exception):
    """The API said the organization's spend limit is reached: retrying cannot help."""

    def __init__(self, message: str, request_id: str | None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass
class Usage:
    """Token counts, per call or summed over a session."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0

    @classmethod
    def of(cls, usage: Any) -> Usage:
        """Read an API ``usage`` object (cache fields may be absent or null)."""
        return cls(
            input=int(getattr(usage, "input_tokens", 0) or 0),
            output=int(getattr(usage, "output_tokens", 0) or 0),
            cache_read=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
            cache_creation=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
        )

    def add(self, other: Usage) -> None:
        """Add ``other`` into this total."""
        self.input += other.input
        self.output += other.output
        self.cache_read += other.cache_read
        self.cache_creation += other.cache_creation

    def as_dict(self) -> dict[str, int]:
        """Return the contract's usage dict (input, output, cache_read, cache_creation)."""
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_creation": self.cache_creation,
        }


@dataclass(frozen=True)
class Step:
    """What the loop does with one response: its action and, for ``finish``, the exit."""

    action: str  # tools, continue, resume, retry_larger, finish
    reason: str = ""
    detail: str = ""


def next_step(stop_reason: str | None, content: list[dict[str, Any]], stop_details: Any = None) -> Step:
    """Decide what follows a response with ``stop_reason`` and ``content`` blocks."""
    has_tool_use = any(block.get("type") == "tool_use" for block in content)
    if stop_reason in ("end_turn", "stop_sequence"):
        return Step("tools") if has_tool_use else Step("finish", "completed")
    if stop_reason == "tool_use":
        if not has_tool_use:
            return Step("finish", "error", "stop_reason tool_use came without a tool_use block")
        return Step("tools")
    if stop_reason == "max_tokens":
        # A tool_use block cut off mid-input cannot be run; the docs say to retry the
        # request with a higher max_tokens, as for an answer cut off before it said anything.
        # Cut-off text is continued instead.
        if not content or content[-1].get("type") == "tool_use":
            return Step("retry_larger")
        return Step("continue")
    if stop_reason == "pause_turn":
        return Step("resume")
    if stop_reason == "refusal":
        category = getattr(stop_details, "category", None) if stop_details is not None else None
        return Step("finish", "error", f"the model refused (category {category or 'unspecified'})")
    if stop_reason == "model_context_window_exceeded":
        return Step("finish", "error", "the conversation exceeded the model's context window")
    return Step("finish", "error", f"unknown stop_reason {stop_reason!r}")


def append_assistant(messages: list[dict[str, Any]], content: list[dict[str, Any]]) -> None:
    """Append an assistant turn; a turn resumed after pause_turn extends the paused one."""
    if not content:
        return
    if messages and messages[-1]["role"] == "assistant":
        messages[-1]["content"].extend(content)
    else:
        messages.append({"role": "assistant", "content": list(content)})


def tool_result_block(tool_use_id: str, result: ToolResult) -> dict[str, Any]:
    """Return the tool_result block answering ``tool_use_id``."""
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": result.content or "(no output)",
    }
    if result.is_error:
        block["is_error"] = True
    return block


def system_blocks(prompt: str) -> list[dict[str, Any]]:
    """Return the system prompt as one text block marked as a cache breakpoint."""
    return [{"type": "text", "text": prompt or DEFAULT_SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}}]


def first_message(task: Any, workspace: Path) -> dict[str, Any]:
    """Return the opening user message: the task, its progress so far, and the workspace."""
    parts = [f"Task {task.id}: {task.title}", task.prompt]
    if task.progress:
        parts.append(f"Progress from earlier sessions (continue from here):\n{task.progress}")
    parts.append(f"Your workspace is {workspace}. Call complete_task with a summary when the task is done.")
    return {"role": "user", "content": "\n\n".join(parts)}


def is_spend_limit(body: Any) -> bool:
    """Tell whether an error body is the API's spend-limit answer rather than a rate limit."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    if isinstance(code, str) and code.endswith("spend_limit_reached"):
        return True
    # Without an error_code, the wording is the only sign; the API's message says "usage limit".
    message = str(error.get("message", "")).lower()
    return error.get("type") == "rate_limit_error" and ("usage limit" in message or "spend limit" in message)


def classify_error(exc: BaseException) -> tuple[str, str]:
    """Map a failed Messages API call to its outcome and a reason a person can read."""
    import anthropic

    if isinstance(exc, SpendLimitReached):
        return "rate_limited", f"spend limit reached, not retried: {exc} (request {exc.request_id})"
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout", "the API did not answer in time (after the SDK's retries)"
    if isinstance(exc, anthropic.APIConnectionError):
        return (
            "connection_error",
            f"connection to the API failed (after the SDK's retries): {exc.__cause__ or exc}",
        )
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if isinstance(exc, anthropic.AuthenticationError):
            outcome = "authentication_error"
        elif isinstance(exc, anthropic.PermissionDeniedError):
            outcome = "permission_error"
        elif isinstance(exc, anthropic.RateLimitError):
            outcome = "rate_limited"
        elif status == 529:
            outcome = "overloaded"
        elif status >= 500:
            outcome = "server_error"
        else:
            outcome = "invalid_request"
        message = getattr(exc, "api_message", None) or exc.message
        return outcome, f"HTTP {status} {exc.type or 'error'}: {message} (request {exc.request_id})"
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError):
        return "bad_response", f"the API's answer could not be read: {type(exc).__name__}: {exc}"
    raise exc


class CallWatch:
    """SDK middleware: count the attempts of a call and stop at a spend-limit answer."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, request: Any, call_next: Callable[[Any], Any]) -> Any:
        self.attempts += 1
        response = call_next(request)
        if response.status_code == 429:
            http = response.http_response
            try:
                body = json.loads(http.read())
            except ValueError:
                body = None
            if is_spend_limit(body):
                # Not an APIStatusError, so the SDK's retry loop lets it through at once.
                raise SpendLimitReached(
                    str(body["error"].get("message", "spend limit reached")), http.headers.get("request-id")
                )
        return response


@dataclass
class SessionResult:
    """How the loop ended: the result line of the contract."""

    reason: str
    turns: int
    summary: str
    last_text: str
    detail: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.reason]


class EventSink:
    """Write the contract's JSON events, one a line, to the daemon's pipe (or nowhere)."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream

    def emit(self, **event: Any) -> None:
        """Write one event and flush it, so the daemon sees it even if we are killed next."""
        if self.stream is None:
            return
        try:
            self.stream.write(json.dumps(event) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            # The daemon went away; the store still holds what matters.
            self.stream = None


@dataclass
class Session:
    """The tool-use loop of one session; the client is the ``anthropic`` SDK's, built with ``watch``."""

    config: Config
    task: Any
    store: SessionStore
    client: Any
    watch: CallWatch
    events: EventSink
    session_id: int | None = None
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    last_text: str = ""

    def __post_init__(self) -> None:
        self.workspace = self.config.workspaces_dir / f"task-{self.task.id}"
        self.toolbox = Toolbox(
            task_id=self.task.id,
            workspace=self.workspace,
            store=self.store,
            timeout=self.config.tool_timeout_seconds,
            limit=self.config.tool_output_limit_bytes,
        )
        self.tools = tool_definitions()
        self.system = system_blocks(self.config.system_prompt)
        self.messages: list[dict[str, Any]] = [first_message(self.task, self.workspace.resolve())]
        self.max_tokens = self.config.max_tokens

    def run(self) -> SessionResult:
        """Run turns until the task completes, the turn budget is spent, or an error ends it."""
        while self.turns < self.config.max_turns:
            response = self._call()
            if isinstance(response, SessionResult):
                return response
            content = [block.model_dump(mode="json", exclude_none=True) for block in response.content]
            texts = [block["text"] for block in content if block.get("type") == "text" and block.get("text")]
            if texts:
                self.last_text = texts[-1]
            step = next_step(response.stop_reason, content, getattr(response, "stop_details", None))
            if step.action == "finish":
                return self._finish(step.reason, step.detail)
            if step.action == "retry_larger":
                if self.max_tokens >= MAX_TOKENS_CEILING:
                    return self._finish("error", f"a tool call did not fit in max_tokens {self.max_tokens}")
                self.max_tokens = min(self.max_tokens * 2, MAX_TOKENS_CEILING)
                continue
            append_assistant(self.messages, content)
            if step.action == "resume":
                continue
            results = [
                tool_result_block(block["id"], self.toolbox.run(block["name"], block.get("input")))
                for block in content
                if block.get("type") == "tool_use"
            ]
            if step.action == "continue":
                results.append({"type": "text", "text": CONTINUE_PROMPT})
            self.messages.append({"role": "user", "content": results})
            if self.toolbox.completed_summary is not None:
                return self._finish("completed", summary=self.toolbox.completed_summary)
        return self._finish("max_turns")

    def _call(self) -> Any:
        """Make one Messages API call (one turn); return the Message, or the error's result."""
        watch = self.watch
        watch.attempts = 0
        started = time.perf_counter()
        try:
            message = self.client.messages.create(
                model=self.config.model,
                max_tokens=self.max_tokens,
                system=self.system,
                tools=self.tools,
                messages=self.messages,
            )
        except Exception as exc:
            duration = time.perf_counter() - started
            outcome, reason = classify_error(exc)
            self._record_call(outcome, duration, watch.attempts, Usage())
            log.event(
                f"[session] task {self.task.id} session {self.session_id} Claude API call failed: "
                f"{outcome}: {reason}",
                logging.ERROR,
                event="llm_error",
                task_id=self.task.id,
                session_id=self.session_id,
                outcome=outcome,
            )
            return self._finish("error", f"{outcome}: {reason}")
        duration = time.perf_counter() - started
        usage = Usage.of(message.usage)
        self.turns += 1
        self.usage.add(usage)
        self._record_call("success", duration, watch.attempts, usage)
        if self.session_id is not None:
            self.store.update_session_progress(self.session_id, self.turns, self.usage.as_dict())
        self.events.emit(event="turn", turns=self.turns)
        return message

    def _record_call(self, outcome: str, duration: float, attempts: int, usage: Usage) -> None:
        self.events.emit(
            event="llm_request",
            model=self.config.model,
            outcome=outcome,
            duration_seconds=round(duration, 6),
            attempts=attempts,
            usage=usage.as_dict(),
        )

    def _finish(self, reason: str, detail: str = "", summary: str = "") -> SessionResult:
        if not summary:
            summary = self._summary(reason, detail)
        # The daemon writes summary and last_text into the task's progress for the next session.
        return SessionResult(reason, self.turns, summary, self.last_text[:TEXT_EXCERPT], detail)

    def _summary(self, reason: str, detail: str) -> str:
        calls = ", ".join(f"{name} x{count}" for name, count in sorted(self.toolbox.calls.items()))
        parts = [detail] if detail else []
        if reason == "max_turns":
            parts.append(f"stopped at the {self.config.max_turns}-turn limit")
        if reason == "completed" and self.last_text:
            parts.append(self.last_text[:500])
        parts.append(f"tool calls: {calls or 'none'}")
        return "; ".join(parts)


def make_client(config: Config, api_key: str, watch: CallWatch) -> Any:
    """Build the SDK client from the config's endpoint, retry bound and timeout."""
    import anthropic

    return anthropic.Anthropic(
        api_key=api_key,
        base_url=config.anthropic_base_url,
        max_retries=config.anthropic_max_retries,
        timeout=config.anthropic_timeout_seconds,
        middleware=[watch],
    )


def run_session(
    config: Config,
    store: SessionStore,
    task_id: int,
    session_id: int | None,
    events: EventSink,
    api_key: str,
) -> SessionResult:
    """Run one session for ``task_id``, emit its result event and return the result."""
    task = store.get_task(task_id)
    watch = CallWatch()
    session = Session(config, task, store, make_client(config, api_key, watch), watch, events, session_id)
    result = session.run()
    events.emit(
        event="result",
        reason=result.reason,
        turns=result.turns,
        summary=result.summary,
        last_text=result.last_text,
    )
    level = logging.ERROR if result.reason == "error" else logging.INFO
    log.event(
        f"[session] task {task_id} session {session_id} loop ended: "
        f"{result.reason} after {result.turns} turns" + (f" ({result.detail})" if result.detail else ""),
        level,
        event="session_loop_end",
        task_id=task_id,
        session_id=session_id,
        turns=result.turns,
    )
    return result


def add_parser(subparsers: Any) -> None:
    """Register ``session run``."""
    parser = subparsers.add_parser("session", help="run one agent session (the daemon starts these)")
    actions = parser.add_subparsers(dest="session_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run the tool-use loop for one task and exit 0, 1 or 2")
    run.add_argument("task_id", type=int, metavar="TASK_ID")
    run.add_argument("--session-id", type=int, help="the sessions row the daemon created for this run")
    run.add_argument("--events-fd", type=int, help="file descriptor for JSON events, one a line")
    run.set_defaults(func=command_run)


def command_run(args: argparse.Namespace) -> int:
    """Run ``session run``: load config and store, run the loop, exit 0, 1 or 2."""
    from orchestrator.cli import load_config
    from orchestrator.store import Store, StoreError

    log.setup()
    config = load_config(args)
    stream = os.fdopen(args.events_fd, "w", buffering=1) if args.events_fd is not None else None
    events = EventSink(stream)

    def fail(message: str) -> int:
        print(f"jada-agent: session: {message}", file=sys.stderr)
        events.emit(event="result", reason="error", turns=0, summary=message, last_text="")
        return EXIT_CODES["error"]

    api_key = os.environ.get("ANTHROPIC_API_KEY", "")
    if not api_key:
        return fail("ANTHROPIC_API_KEY is not set; put it in the service's environment file")
    try:
        store = Store(config.store_path)
        store.get_task(args.task_id)
    except StoreError as exc:
        return fail(str(exc))
    try:
        return run_session(config, store, args.task_id, args.session_id, events, api_key).exit_code
    except Exception as exc:
        log.event(
            f"[session] task {args.task_id} session {args.session_id} crashed: {type(exc).__name__}: {exc}",
            logging.ERROR,
            event="session_crash",
            task_id=args.task_id,
            session_id=args.session_id,
        )
        traceback.print_exc()
        return fail(f"crashed: {type(exc).__name__}: {exc}")
    finally:
        store.close()
