"""A protocol-level simulator of the Claude Messages API (``POST /v1/messages``).

Tests and the demo reach it through the real ``anthropic`` SDK by ``base_url``. It answers
with the API's own JSON shapes (Message, usage with cache tokens, the error envelope, a
``request-id`` header, ``retry-after`` on retryable errors) and validates every request the
way the API does, so a malformed conversation from the orchestrator fails loudly with a 400
``invalid_request_error`` instead of passing unnoticed.

What it answers is a scenario, chosen per server and overridable per conversation by a
marker in the first user message, e.g. ``[scenario:tool_forever]`` or
``[scenario:tool_turns:3]``, so one simulator can drive a whole day of different tasks::

    with ClaudeSimulator(scenario="tool_turns:2") as sim:
        client = anthropic.Anthropic(api_key="sk-test", base_url=sim.base_url)

Run standalone: ``python -m simulators.claude --port 8765 --scenario tool_forever``.

Simplifications, on purpose: token counts are estimated from JSON length (four characters a
token); prompts of any length are cacheable (the real API has a minimum of about 1,024
tokens); the cache never expires while the server runs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import threading
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from simulators.httpserver import ThreadedServer

SCENARIO_MARKER = re.compile(r"\[scenario:([a-z_]+)(?::([0-9.]+))?\]")

# Scenarios that answer with a message, and those that answer with a failure first.
CONVERSATION_SCENARIOS = (
    "end_turn",
    "complete",
    "tool_turns",
    "tool_forever",
    "request_human",
    "pause_turn",
    "max_tokens",
    "max_tokens_tool",
    "refusal",
    "context_exceeded",
    "slow",
)
FAILURE_SCENARIOS = (
    "rate_limited",
    "overloaded",
    "server_error",
    "unauthorized",
    "forbidden",
    "spend_limit",
    "garbage",
    "truncated",
)
SCENARIOS = CONVERSATION_SCENARIOS + FAILURE_SCENARIOS

# How many attempts of one request fail before it succeeds, when the marker gives no count;
# None means every attempt fails.
_DEFAULT_FAILURES: dict[str, int | None] = {"rate_limited": 1}

# Below this max_tokens, the max_tokens_tool scenario cuts its tool_use block off.
TRUNCATING_MAX_TOKENS = 8192

CACHE_CONTROL_LIMIT = 4
KNOWN_BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}


@dataclass(frozen=True)
class Scenario:
    """A named behaviour with an optional numeric argument (a count or seconds)."""

    name: str
    arg: float | None = None

    @classmethod
    def parse(cls, text: str) -> Scenario:
        """Parse ``name`` or ``name:arg``; raise ValueError for an unknown name."""
        name, _, arg = text.partition(":")
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
        return cls(name, float(arg) if arg else None)


class InvalidRequest(Exception):
    """A request the real API would reject with 400 invalid_request_error."""


def scenario_marker(body: dict[str, Any]) -> Scenario | None:
    """Return the scenario named by a ``[scenario:...]`` marker in the first user message."""
    messages = body.get("messages") or []
    if not messages:
        return None
    match = SCENARIO_MARKER.search(_text_of(messages[0].get("content")))
    if match is None or match.group(1) not in SCENARIOS:
        return None
    return Scenario(match.group(1), float(match.group(2)) if match.group(2) else None)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def validate_request(body: Any) -> None:
    """Check a Messages API request as the API does; raise InvalidRequest with its message."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidRequest("max_tokens: Field required")
    if max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    _validate_system(body.get("system"))
    tool_names = _validate_tools(body.get("tools"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required")
    _validate_messages(messages, tool_names)
    breakpoints = sum(1 for _, block in _cacheable_blocks(body) if block.get("cache_control"))
    if breakpoints > CACHE_CONTROL_LIMIT:
        raise InvalidRequest(
            f"A maximum of {CACHE_CONTROL_LIMIT} blocks with cache_control may be provided. "
            f"Found {breakpoints}."
        )


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise InvalidRequest("system: Input should be a valid string or a list of text blocks")
    for index, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise InvalidRequest(f"system.{index}: Input should be a text block")
        if not block["text"]:
            raise InvalidRequest(f"system.{index}.text: text content blocks must be non-empty")


def _validate_tools(tools: Any) -> set[str]:
    if tools is None:
        return set()
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")
    names: set[str] = set()
    typed = {"bash_20250124": "bash", "text_editor_20250728": "str_replace_based_edit_tool"}
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"tools.{index}.name: Field required")
        kind = tool.get("type", "custom")
        if kind in typed:
            if tool["name"] != typed[kind]:
                raise InvalidRequest(f"tools.{index}.name: Input should be '{typed[kind]}'")
        elif kind == "custom":
            if not isinstance(tool.get("input_schema"), dict):
                raise InvalidRequest(f"tools.{index}.custom.input_schema: Field required")
        else:
            raise InvalidRequest(f"tools.{index}.type: unknown tool type {kind!r}")
        if tool["name"] in names:
            raise InvalidRequest(f"tools: Tool names must be unique, {tool['name']!r} appears twice")
        names.add(tool["name"])
    return names


def _blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"messages.{index}.content: Input should be a valid string or list")
    for position, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCK_TYPES:
            raise InvalidRequest(f"messages.{index}.content.{position}: unknown content block type")
    return content


def _validate_messages(messages: list[Any], tool_names: set[str]) -> None:
    previous_role = None
    pending_tool_uses: list[str] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        role = message["role"]
        if index == 0 and role != "user":
            raise InvalidRequest('messages: first message must use the "user" role')
        if role == previous_role:
            raise InvalidRequest(
                f'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        blocks = _blocks(message, index)
        final = index == len(messages) - 1
        if not blocks and not (final and role == "assistant"):
            raise InvalidRequest(
                f"messages.{index}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        last_text = blocks[-1].get("text", "") if blocks and blocks[-1]["type"] == "text" else ""
        if final and role == "assistant" and last_text != last_text.rstrip():
            raise InvalidRequest("final assistant content cannot end with trailing whitespace")
        if role == "user":
            _validate_user_blocks(blocks, index, pending_tool_uses)
            pending_tool_uses = []
        else:
            pending_tool_uses = _validate_assistant_blocks(blocks, index, tool_names)
        previous_role = role
    if pending_tool_uses:
        raise InvalidRequest(
            f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(pending_tool_uses)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )


def _validate_user_blocks(blocks: list[dict[str, Any]], index: int, pending: list[str]) -> None:
    answered: list[str] = []
    seen_other = False
    for position, block in enumerate(blocks):
        if block["type"] == "tool_use":
            raise InvalidRequest(
                f"messages.{index}.content.{position}: tool_use blocks belong to the assistant"
            )
        if block["type"] == "text" and not block.get("text"):
            raise InvalidRequest(f"messages.{index}.content.{position}.text: text blocks must be non-empty")
        if block["type"] != "tool_result":
            seen_other = True
            continue
        tool_use_id = block.get("tool_use_id")
        if tool_use_id not in pending:
            raise InvalidRequest(
                f"messages.{index}.content.{position}: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )
        if seen_other:
            raise InvalidRequest(
                f"messages.{index}.content.{position}: `tool_result` blocks must come first in the "
                "user message, before any other content"
            )
        if "is_error" in block and not isinstance(block["is_error"], bool):
            raise InvalidRequest(f"messages.{index}.content.{position}.is_error: Input should be a boolean")
        answered.append(tool_use_id)
    missing = [tool_use_id for tool_use_id in pending if tool_use_id not in answered]
    if missing:
        raise InvalidRequest(
            f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately "
            f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
            "`tool_result` block in the next message."
        )


def _validate_assistant_blocks(blocks: list[dict[str, Any]], index: int, tool_names: set[str]) -> list[str]:
    tool_use_ids = []
    for position, block in enumerate(blocks):
        if block["type"] == "tool_result":
            raise InvalidRequest(
                f"messages.{index}.content.{position}: tool_result blocks belong to the user"
            )
        if block["type"] == "tool_use":
            if block.get("name") not in tool_names:
                raise InvalidRequest(
                    f"messages.{index}.content.{position}: tool_use names tool {block.get('name')!r}, "
                    "which is not in tools"
                )
            if not isinstance(block.get("id"), str) or not isinstance(block.get("input"), dict):
                raise InvalidRequest(f"messages.{index}.content.{position}: tool_use needs id and input")
            tool_use_ids.append(block["id"])
    return tool_use_ids


def _cacheable_blocks(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield the prompt's blocks in cache order (tools, system, messages)."""
    for tool in body.get("tools") or []:
        yield "tool", tool
    system = body.get("system")
    if isinstance(system, list):
        for block in system:
            yield "system", block
    elif isinstance(system, str):
        yield "system", {"type": "text", "text": system}
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            yield message.get("role", ""), {"type": "text", "text": content}
        else:
            for block in content or []:
                yield message.get("role", ""), block


def estimate_tokens(value: Any) -> int:
    """Estimate tokens as the API would roughly count them: four characters a token."""
    return max(1, len(json.dumps(value, sort_keys=True, separators=(",", ":"))) // 4)


class PromptCache:
    """Remember cached prefixes and turn a request into usage with cache tokens."""

    def __init__(self) -> None:
        self._prefixes: set[str] = set()
        self._lock = threading.Lock()

    def usage(self, body: dict[str, Any], output: Any) -> dict[str, Any]:
        """Return the ``usage`` object for ``body``, reading and writing the cache."""
        digest = hashlib.sha256()
        tokens = 0
        breakpoints: list[tuple[str, int]] = []
        for _, block in _cacheable_blocks(body):
            without_marker = {k: v for k, v in block.items() if k != "cache_control"}
            digest.update(json.dumps(without_marker, sort_keys=True).encode())
            tokens += estimate_tokens(without_marker)
            if block.get("cache_control"):
                breakpoints.append((digest.hexdigest(), tokens))
        read = 0
        with self._lock:
            for key, prefix_tokens in reversed(breakpoints):
                if key in self._prefixes:
                    read = prefix_tokens
                    break
            self._prefixes.update(key for key, _ in breakpoints)
        cached = breakpoints[-1][1] if breakpoints else 0
        return {
            "input_tokens": tokens - cached,
            "cache_creation_input_tokens": cached - read,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": cached - read, "ephemeral_1h_input_tokens": 0},
            "output_tokens": estimate_tokens(output) + 8,
            "service_tier": "standard",
        }


@dataclass
class Reply:
    """What the simulated model says: content blocks and a stop reason."""

    content: list[dict[str, Any]]
    stop_reason: str
    stop_details: dict[str, Any] | None = None


def _tool_use(name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": name, "input": tool_input}


def _work_step(turn: int) -> list[dict[str, Any]]:
    """Return one step of plausible work: write notes, read them back, run a command."""
    text = {"type": "text", "text": f"Step {turn + 1}: continuing the task."}
    if turn % 3 == 0:
        call = _tool_use(
            "str_replace_based_edit_tool",
            {"command": "create", "path": "notes.md", "file_text": f"# Notes\n\nstep {turn + 1}\n"},
        )
    elif turn % 3 == 1:
        call = _tool_use("str_replace_based_edit_tool", {"command": "view", "path": "notes.md"})
    else:
        call = _tool_use("bash", {"command": f"echo step {turn + 1} && ls"})
    return [text, call]


def conversation_reply(scenario: Scenario, body: dict[str, Any]) -> Reply:
    """Decide the simulated model's answer from the scenario and the conversation so far."""
    messages = body["messages"]
    turn = sum(1 for m in messages if m["role"] == "assistant")
    continuing = messages[-1]["role"] == "assistant"
    name = scenario.name
    done = Reply([{"type": "text", "text": "The task is done."}], "end_turn")
    if name in ("end_turn", "slow") or name in FAILURE_SCENARIOS:
        return done
    if name == "complete":
        return Reply([_tool_use("complete_task", {"summary": "Finished in one step."})], "tool_use")
    if name == "tool_forever" or (name == "tool_turns" and turn < int(scenario.arg or 1)):
        return Reply(_work_step(turn), "tool_use")
    if name == "request_human":
        if turn == 0:
            question = "Which signing provider should the e-signature flow use?"
            return Reply([_tool_use("request_human", {"question": question})], "tool_use")
        if turn == 1:
            summary = "Unblocked the e-signature work and asked a human about the provider."
            return Reply([_tool_use("complete_task", {"summary": summary})], "tool_use")
        return done
    if name == "pause_turn":
        if continuing:
            return Reply([{"type": "text", "text": "Resumed after the pause; the task is done."}], "end_turn")
        return Reply([{"type": "text", "text": "Working through a long step..."}], "pause_turn")
    if name == "max_tokens":
        if turn == 0:
            return Reply(
                [{"type": "text", "text": "Here is the first half of a long answer, cut"}], "max_tokens"
            )
        return done
    if name == "max_tokens_tool":
        if turn > 0:
            return done
        if body["max_tokens"] < int(scenario.arg or TRUNCATING_MAX_TOKENS):
            cut = _tool_use("str_replace_based_edit_tool", {})
            return Reply([{"type": "text", "text": "Writing the file."}, cut], "max_tokens")
        return Reply(_work_step(0), "tool_use")
    if name == "refusal":
        details = {"type": "refusal", "category": "cyber", "explanation": "The request could enable harm."}
        return Reply([], "refusal", details)
    if name == "context_exceeded":
        if turn < int(scenario.arg or 1):
            return Reply(_work_step(turn), "tool_use")
        return Reply(
            [{"type": "text", "text": "The context is full; stopping here."}], "model_context_window_exceeded"
        )
    return done


@dataclass
class Failure:
    """An HTTP error answer in the API's error envelope, or a broken body."""

    status: int
    error_type: str = ""
    message: str = ""
    retry_after: bool = False
    error_code: str | None = None
    broken_body: str | None = None


_FAILURES = {
    "rate_limited": Failure(
        429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", True
    ),
    "overloaded": Failure(529, "overloaded_error", "Overloaded", True),
    "server_error": Failure(500, "api_error", "Internal server error", True),
    "unauthorized": Failure(401, "authentication_error", "invalid x-api-key"),
    "forbidden": Failure(
        403, "permission_error", "Your API key does not have permission to use the specified resource."
    ),
    "spend_limit": Failure(
        429,
        "rate_limit_error",
        "Your organization has reached the monthly usage limit of its API tier. "
        "API access resumes on the first day of next month at 00:00 UTC.",
        error_code="enforced_spend_limit_reached",
    ),
    "garbage": Failure(200, broken_body="garbage"),
    "truncated": Failure(200, broken_body="truncated"),
}


def failure_for(scenario: Scenario, attempt: int) -> Failure | None:
    """Return the failure for the ``attempt``-th try (1-based) of one request, if it fails."""
    failure = _FAILURES.get(scenario.name)
    if failure is None:
        return None
    failing = int(scenario.arg) if scenario.arg is not None else _DEFAULT_FAILURES.get(scenario.name)
    if failing is not None and attempt > failing:
        return None
    return failure


@dataclass
class RecordedRequest:
    """One request as the simulator received it (the API key is not kept)."""

    path: str
    body: Any
    scenario: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class ClaudeSimulator(ThreadedServer):
    """A Claude Messages API on 127.0.0.1, started in-process or from the command line."""

    def __init__(
        self,
        scenario: str = "tool_turns:1",
        host: str = "127.0.0.1",
        port: int = 0,
        retry_after: float = 0.01,
        slow_seconds: float = 30.0,
    ) -> None:
        self.scenario = Scenario.parse(scenario)
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        # Bounded, so a demo left running for days does not grow without end.
        self.requests: deque[RecordedRequest] = deque(maxlen=10_000)
        self.cache = PromptCache()
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # A short poll interval so stop() returns quickly (tests start and stop many servers).
        super().__init__(host, port, _handler_for(self), "claude-simulator", poll_interval=0.05)

    @property
    def base_url(self) -> str:
        """Return the URL the anthropic SDK's ``base_url`` takes."""
        return self.url

    def stop(self) -> None:
        """Stop serving, cutting any slow answer short, and close the socket."""
        self._stopping.set()
        super().stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._server.serve_forever()

    def messages_bodies(self) -> list[dict[str, Any]]:
        """Return the bodies of the Messages requests received, in order."""
        with self._lock:
            return [r.body for r in self.requests if r.path == "/v1/messages"]

    def _attempt(self, raw: bytes) -> int:
        key = hashlib.sha256(raw).hexdigest()
        with self._lock:
            self._attempts[key] += 1
            return self._attempts[key]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def wait_slow(self, seconds: float) -> None:
        """Wait ``seconds`` or until the server stops."""
        self._stopping.wait(seconds)


def _handler_for(sim: ClaudeSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        simulator = sim

    return Handler


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive like the real API, so the SDK's connection pool is exercised; without
    # Nagle, as headers and body go out in two writes that would otherwise wait for an ACK.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    simulator: ClaudeSimulator

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read the recorded requests, not a log."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        if path != "/v1/messages":
            self._error(HTTPStatus.NOT_FOUND, "not_found_error", f"Not found: {path}", path, None, "")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(
                HTTPStatus.BAD_REQUEST,
                "invalid_request_error",
                "request body is not valid JSON",
                path,
                None,
                "",
            )
            return
        scenario = scenario_marker(body) or self.simulator.scenario
        if scenario.name != "unauthorized" and not self._has_credential():
            self._error(
                401, "authentication_error", "x-api-key header is required", path, body, scenario.name
            )
            return
        if not self.headers.get("anthropic-version"):
            self._error(
                400,
                "invalid_request_error",
                "anthropic-version: header is required",
                path,
                body,
                scenario.name,
            )
            return
        try:
            validate_request(body)
        except InvalidRequest as exc:
            self._error(400, "invalid_request_error", str(exc), path, body, scenario.name)
            return
        failure = None
        if scenario.name in FAILURE_SCENARIOS:
            failure = failure_for(scenario, self.simulator._attempt(raw))
        if failure is not None and failure.broken_body is None:
            self._error(
                failure.status, failure.error_type, failure.message, path, body, scenario.name, failure
            )
            return
        reply = conversation_reply(scenario, body)
        if scenario.name == "slow":
            self.simulator.wait_slow(
                scenario.arg if scenario.arg is not None else self.simulator.slow_seconds
            )
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": reply.content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "stop_details": reply.stop_details,
            "usage": self.simulator.cache.usage(body, reply.content),
        }
        self.simulator._record(RecordedRequest(path, body, scenario.name, 200, self._safe_headers()))
        payload = json.dumps(message).encode()
        if failure is not None and failure.broken_body == "garbage":
            self._send(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {})
        elif failure is not None and failure.broken_body == "truncated":
            self._send(200, payload, {}, cut=len(payload) // 2)
        else:
            self._send(200, payload, {})

    def _has_credential(self) -> bool:
        # SDKs send the key as x-api-key or, newer ones, as a bearer token.
        bearer = self.headers.get("authorization", "")
        return bool(self.headers.get("x-api-key")) or (bearer.startswith("Bearer ") and len(bearer) > 7)

    def _safe_headers(self) -> dict[str, str]:
        return {
            k.lower(): v for k, v in self.headers.items() if k.lower() not in ("x-api-key", "authorization")
        }

    def _error(
        self,
        status: int,
        error_type: str,
        message: str,
        path: str,
        body: Any,
        scenario: str,
        failure: Failure | None = None,
    ) -> None:
        self.simulator._record(RecordedRequest(path, body, scenario, int(status), self._safe_headers()))
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        error: dict[str, Any] = {"type": error_type, "message": message}
        if failure is not None and failure.error_code:
            error["details"] = {"error_code": failure.error_code}
        payload = json.dumps({"type": "error", "error": error, "request_id": request_id}).encode()
        headers = {"request-id": request_id}
        if failure is not None and failure.retry_after:
            headers["retry-after"] = f"{self.simulator.retry_after:g}"
        self._send(int(status), payload, headers)

    def _send(self, status: int, payload: bytes, headers: dict[str, str], cut: int | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        headers.setdefault("request-id", f"req_{uuid.uuid4().hex[:24]}")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            if cut is None:
                self.wfile.write(payload)
                return
            # A connection dropped mid-body: promise the whole length, send half, hang up.
            self.wfile.write(payload[:cut])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a slow answer past its timeout)
        self.close_connection = True


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m simulators.claude", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--scenario", default="tool_turns:1", help=f"one of: {', '.join(SCENARIOS)}")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds in retry-after headers")
    args = parser.parse_args(argv)
    try:
        sim = ClaudeSimulator(args.scenario, host=args.host, port=args.port, retry_after=args.retry_after)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"Claude API simulator listening on {sim.base_url} (scenario {args.scenario})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sim.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
