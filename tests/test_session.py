"""The pure parts of the session loop: stop reasons, history, error outcomes, usage."""

from __future__ import annotations

import json
from types import SimpleNamespace

import anthropic
import httpx2
import pytest

from orchestrator.session import (
    EventSink,
    SpendLimitReached,
    Step,
    Usage,
    append_assistant,
    classify_error,
    first_message,
    is_spend_limit,
    next_step,
    system_blocks,
    tool_result_block,
)
from orchestrator.tools import ToolResult

TEXT = {"type": "text", "text": "thinking"}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "ls"}}


@pytest.mark.parametrize(
    ("stop_reason", "content", "expected"),
    [
        ("end_turn", [TEXT], Step("finish", "completed")),
        ("stop_sequence", [TEXT], Step("finish", "completed")),
        ("tool_use", [TEXT, TOOL_USE], Step("tools")),
        ("max_tokens", [TEXT], Step("continue")),
        ("max_tokens", [TEXT, TOOL_USE], Step("retry_larger")),
        ("max_tokens", [], Step("retry_larger")),
        ("tool_use", [TEXT], Step("finish", "error", "stop_reason tool_use came without a tool_use block")),
        ("pause_turn", [TEXT], Step("resume")),
        (
            "model_context_window_exceeded",
            [TEXT],
            Step("finish", "error", "the conversation exceeded the model's context window"),
        ),
        ("something_new", [TEXT], Step("finish", "error", "unknown stop_reason 'something_new'")),
    ],
)
def test_every_stop_reason_has_a_next_step(stop_reason, content, expected):
    assert next_step(stop_reason, content) == expected


def test_a_refusal_ends_the_session_as_an_error_naming_the_category():
    details = SimpleNamespace(category="cyber", explanation="...")
    assert next_step("refusal", [], details) == Step("finish", "error", "the model refused (category cyber)")
    assert next_step("refusal", [], None).detail == "the model refused (category unspecified)"


def test_history_is_appended_and_a_resumed_turn_extends_the_paused_one():
    messages = [{"role": "user", "content": "go"}]
    append_assistant(messages, [TEXT])
    assert messages[-1] == {"role": "assistant", "content": [TEXT]}
    append_assistant(messages, [TOOL_USE])
    assert messages == [{"role": "user", "content": "go"}, {"role": "assistant", "content": [TEXT, TOOL_USE]}]
    append_assistant(messages, [])
    assert len(messages) == 2


def test_tool_results_answer_their_tool_use_and_flag_errors():
    assert tool_result_block("toolu_1", ToolResult("ok")) == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "ok",
    }
    assert tool_result_block("toolu_2", ToolResult("", is_error=True)) == {
        "type": "tool_result",
        "tool_use_id": "toolu_2",
        "content": "(no output)",
        "is_error": True,
    }


def test_system_prompt_is_one_cached_block():
    assert system_blocks("Be careful.") == [
        {"type": "text", "text": "Be careful.", "cache_control": {"type": "ephemeral"}}
    ]
    assert system_blocks("")[0]["text"].startswith("You are jada-agent")


def test_first_message_carries_the_task_its_progress_and_the_workspace(tmp_path):
    task = SimpleNamespace(
        id=7, title="Crew pages", prompt="Build them.", progress="Session 3 ended with max_turns."
    )
    text = first_message(task, tmp_path)["content"]
    assert text.startswith("Task 7: Crew pages\n\nBuild them.\n\nProgress from earlier sessions")
    assert "Session 3 ended with max_turns." in text
    assert str(tmp_path) in text
    assert (
        "Progress"
        not in first_message(SimpleNamespace(**{**vars(task), "progress": ""}), tmp_path)["content"]
    )


def test_spend_limit_is_told_apart_from_a_rate_limit():
    coded = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "x",
            "details": {"error_code": "enforced_spend_limit_reached"},
        },
    }
    worded = {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "You have reached your specified API usage limits."},
    }
    plain = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Number of request tokens has exceeded your per-minute rate limit",
        },
    }
    assert is_spend_limit(coded) is True
    assert is_spend_limit(worded) is True
    assert is_spend_limit(plain) is False
    assert is_spend_limit("<html>") is False


def status_error(cls, status: int, error_type: str, message: str) -> anthropic.APIStatusError:
    """Build the SDK's exception for an HTTP error answer with the API's error body."""
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    response = httpx2.Response(status, json=body, headers={"request-id": "req_1"}, request=request)
    return cls(f"Error code: {status}", response=response, body=body)


@pytest.mark.parametrize(
    ("cls", "status", "error_type", "outcome"),
    [
        (anthropic.AuthenticationError, 401, "authentication_error", "authentication_error"),
        (anthropic.PermissionDeniedError, 403, "permission_error", "permission_error"),
        (anthropic.RateLimitError, 429, "rate_limit_error", "rate_limited"),
        (anthropic.OverloadedError, 529, "overloaded_error", "overloaded"),
        (anthropic.InternalServerError, 500, "api_error", "server_error"),
        (anthropic.ServiceUnavailableError, 503, "api_error", "server_error"),
        (anthropic.BadRequestError, 400, "invalid_request_error", "invalid_request"),
        (anthropic.NotFoundError, 404, "not_found_error", "invalid_request"),
    ],
)
def test_api_errors_map_to_their_outcome(cls, status, error_type, outcome):
    got, reason = classify_error(status_error(cls, status, error_type, "bad thing"))
    assert got == outcome
    assert reason == f"HTTP {status} {error_type}: bad thing (request req_1)"


def test_transport_failures_and_unreadable_answers_map_to_their_outcome():
    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    assert classify_error(anthropic.APITimeoutError(request))[0] == "timeout"
    assert classify_error(anthropic.APIConnectionError(request=request))[0] == "connection_error"
    assert classify_error(json.JSONDecodeError("Expecting value", "<html>", 0))[0] == "bad_response"
    assert classify_error(SpendLimitReached("monthly limit", "req_9")) == (
        "rate_limited",
        "spend limit reached, not retried: monthly limit (request req_9)",
    )
    with pytest.raises(KeyError):
        classify_error(KeyError("a bug is not an API outcome"))


def test_usage_reads_the_api_fields_and_sums():
    total = Usage()
    total.add(Usage.of(SimpleNamespace(input_tokens=10, output_tokens=5, cache_read_input_tokens=None)))
    total.add(
        Usage.of(
            SimpleNamespace(
                input_tokens=1, output_tokens=2, cache_read_input_tokens=300, cache_creation_input_tokens=7
            )
        )
    )
    assert total.as_dict() == {"input": 11, "output": 7, "cache_read": 300, "cache_creation": 7}


def test_events_are_json_lines_and_a_closed_pipe_is_not_fatal():
    class Closed:
        def write(self, text):
            raise BrokenPipeError

        def flush(self):
            pass

    sink = EventSink(Closed())
    sink.emit(event="turn", turns=1)
    assert sink.stream is None
    lines = []
    EventSink(SimpleNamespace(write=lines.append, flush=lambda: None)).emit(event="turn", turns=2)
    assert [json.loads(line) for line in lines] == [{"event": "turn", "turns": 2}]
