"""The Claude API simulator: request validation, error shapes, usage and scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import anthropic
import pytest

from simulators.claude import (
    ClaudeSimulator,
    InvalidRequest,
    PromptCache,
    Scenario,
    failure_for,
    scenario_marker,
    validate_request,
)

TOOLS = [{"name": "lookup", "input_schema": {"type": "object"}}]


def body(messages, **extra):
    return {"model": "claude-sonnet-4-6", "max_tokens": 100, "tools": TOOLS, "messages": messages, **extra}


def tool_use(tool_id="toolu_1"):
    return {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": tool_id, "name": "lookup", "input": {}}],
    }


def tool_result(tool_id="toolu_1"):
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "ok"}]}


def test_a_well_formed_tool_conversation_is_accepted():
    validate_request(body([{"role": "user", "content": "hi"}, tool_use(), tool_result()]))


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "assistant", "content": "hi"}], 'first message must use the "user" role'),
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            'found multiple "user" roles in a row',
        ),
        (
            [{"role": "user", "content": "hi"}, tool_use(), tool_result("toolu_other")],
            "unexpected `tool_use_id`",
        ),
        ([{"role": "user", "content": "hi"}, tool_use()], "`tool_use` ids were found without `tool_result`"),
        (
            [{"role": "user", "content": "hi"}, tool_use(), {"role": "user", "content": "no results"}],
            "`tool_use` ids were found without `tool_result`",
        ),
        ([tool_result()], "unexpected `tool_use_id`"),
        (
            [
                {"role": "user", "content": "hi"},
                tool_use(),
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "first"},
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
                    ],
                },
            ],
            "must come first",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "nope", "input": {}}],
                },
            ],
            "which is not in tools",
        ),
        ([], "at least one message"),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": []},
                {"role": "user", "content": "x"},
            ],
            "all messages must have non-empty content",
        ),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Half a thought "}],
            "trailing whitespace",
        ),
    ],
)
def test_malformed_conversations_are_rejected_with_the_apis_message(messages, expected):
    with pytest.raises(InvalidRequest, match=expected.replace("(", r"\(")):
        validate_request(body(messages))


def test_model_max_tokens_and_cache_breakpoint_count_are_checked():
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(InvalidRequest, match="model"):
        validate_request({"max_tokens": 10, "messages": messages})
    with pytest.raises(InvalidRequest, match="max_tokens"):
        validate_request({"model": "m", "messages": messages})
    marked = [{"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(InvalidRequest, match="A maximum of 4 blocks with cache_control"):
        validate_request(body(messages, system=marked))


def test_scenario_marker_in_the_first_user_message_names_the_scenario():
    assert scenario_marker(body([{"role": "user", "content": "fix it [scenario:tool_turns:3]"}])) == Scenario(
        "tool_turns", 3.0
    )
    assert scenario_marker(body([{"role": "user", "content": "no marker"}])) is None
    with pytest.raises(ValueError, match="unknown scenario"):
        Scenario.parse("nonsense")


def test_failures_repeat_for_the_given_number_of_attempts():
    assert failure_for(Scenario("rate_limited"), 1).status == 429
    assert failure_for(Scenario("rate_limited"), 2) is None
    assert failure_for(Scenario("overloaded"), 7).status == 529
    assert failure_for(Scenario("overloaded", 2), 2).status == 529
    assert failure_for(Scenario("overloaded", 2), 3) is None
    assert failure_for(Scenario("end_turn"), 1) is None


def test_cache_is_created_on_the_first_call_and_read_when_the_prefix_repeats():
    cache = PromptCache()
    system = [{"type": "text", "text": "You are helpful." * 20, "cache_control": {"type": "ephemeral"}}]
    first = cache.usage(body([{"role": "user", "content": "one"}], system=system), [])
    second = cache.usage(body([{"role": "user", "content": "two, longer"}], system=system), [])
    assert first["cache_creation_input_tokens"] > 0
    assert first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert second["input_tokens"] > 0


def client_for(sim, max_retries=2):
    return anthropic.Anthropic(api_key="sk-test", base_url=sim.base_url, max_retries=max_retries)


def test_sdk_sees_a_400_invalid_request_error_for_a_malformed_conversation():
    with ClaudeSimulator("end_turn") as sim, pytest.raises(anthropic.BadRequestError) as caught:
        client_for(sim).messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            tools=TOOLS,
            messages=[{"role": "user", "content": "hi"}, tool_use()],
        )
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "tool_result" in caught.value.body["error"]["message"]
    assert caught.value.request_id.startswith("req_")


def test_sdk_reads_a_message_with_usage_and_cache_tokens():
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    with ClaudeSimulator("end_turn") as sim:
        client = client_for(sim)
        calls = [
            client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=100,
                system=system,
                messages=[{"role": "user", "content": text}],
            )
            for text in ("first", "second")
        ]
    assert calls[0].stop_reason == "end_turn"
    assert calls[0].content[0].text == "The task is done."
    assert calls[0].model == "claude-sonnet-4-6"
    assert calls[0].usage.cache_creation_input_tokens > 0
    assert calls[1].usage.cache_read_input_tokens == calls[0].usage.cache_creation_input_tokens


def test_rate_limit_answer_carries_retry_after_and_the_sdk_retries_it():
    with ClaudeSimulator("rate_limited", retry_after=0.01) as sim:
        message = client_for(sim).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.stop_reason == "end_turn"
    assert [r.status for r in sim.requests] == [429, 200]


def test_spend_limit_is_a_rate_limit_error_with_an_error_code_and_no_retry_after():
    with ClaudeSimulator("spend_limit") as sim:
        request = urllib.request.Request(
            f"{sim.base_url}/v1/messages",
            data=json.dumps(body([{"role": "user", "content": "hi"}])).encode(),
            headers={
                "x-api-key": "sk-test",
                "anthropic-version": "2023-06-01",
                "content-type": "application/json",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 429
    assert caught.value.headers.get("retry-after") is None
    error = json.loads(caught.value.read())["error"]
    assert error["type"] == "rate_limit_error"
    assert error["details"] == {"error_code": "enforced_spend_limit_reached"}


def test_requests_without_an_api_key_are_unauthorized_and_keys_are_not_recorded():
    with ClaudeSimulator("end_turn") as sim:
        request = urllib.request.Request(
            f"{sim.base_url}/v1/messages",
            data=json.dumps(body([{"role": "user", "content": "hi"}])).encode(),
            headers={"anthropic-version": "2023-06-01"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        client_for(sim).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == 401
    assert all("authorization" not in r.headers and "x-api-key" not in r.headers for r in sim.requests)


def test_runs_from_the_command_line_and_prints_its_base_url():
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.claude", "--port", "0", "--scenario", "end_turn"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        base_url = line.split(" on ")[1].split()[0]
        message = anthropic.Anthropic(api_key="sk-test", base_url=base_url).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.stop_reason == "end_turn"
    finally:
        process.terminate()
        process.wait(timeout=10)
