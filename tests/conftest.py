"""Shared fixtures for the jada-agent test suite."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest

from orchestrator import log
from simulators.claude import ClaudeSimulator


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Capture the orchestrator's log lines in a string for the test; log to stderr again after."""
    stream = io.StringIO()
    log.setup(stream=stream)
    yield stream
    log.setup(stream=sys.stderr)


@pytest.fixture
def claude() -> Iterator[ClaudeSimulator]:
    """Run the Claude API simulator; each prompt picks its scenario, and retries wait only 10 ms."""
    with ClaudeSimulator("end_turn", retry_after=0.01) as simulator:
        yield simulator
