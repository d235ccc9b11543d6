"""The orchestrator's Prometheus metrics (the ``jada_agent_`` half of DESIGN.md's contract).

Counters and histograms are updated where events happen (a session starts or exits, the
session child reports a Claude API call). Gauges that describe the queue and the budget
are read from the store at scrape time by :class:`StoreCollector`, in one query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator import __version__
from orchestrator.log import logger
from orchestrator.store import EXIT_REASONS, STATES, TOKEN_TYPES, Snapshot

# Outcomes the session child reports for a Messages API call (docs/CONTRACTS.md).
LLM_OUTCOMES = (
    "success",
    "rate_limited",
    "overloaded",
    "server_error",
    "authentication_error",
    "permission_error",
    "invalid_request",
    "timeout",
    "connection_error",
    "bad_response",
)
# 29 and 30 are both buckets so a session that ran into the 30-turn limit stands out.
TURN_BUCKETS = (1, 2, 5, 10, 15, 20, 25, 29, 30, 50)
LLM_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class StoreCollector(Collector):
    """Expose the queue and today's budget use, read from the store at scrape time.

    # HELP jada_agent_tasks Tasks in the queue by state.
    # TYPE jada_agent_tasks gauge
    jada_agent_tasks{state="needs_you"} 1.0
    """

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Yield the store-derived gauges, or only store_up 0 when the store cannot be read."""
        up = GaugeMetricFamily("jada_agent_store_up", "1 when the last read of the store succeeded.")
        try:
            snapshot = self._snapshot()
        except Exception as exc:
            # Any failure (locked, deleted, corrupt file) must not break the whole scrape, and
            # serving zeros would read as "empty queue": report the failure instead.
            logger.log(logging.ERROR, "[metrics] cannot read the store: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        tasks = GaugeMetricFamily("jada_agent_tasks", "Tasks in the queue by state.", labels=["state"])
        for state in STATES:
            tasks.add_metric([state], snapshot.tasks_by_state.get(state, 0))
        yield tasks
        yield GaugeMetricFamily(
            "jada_agent_daily_sessions_used",
            "Sessions started on the current UTC day (counted when a session starts).",
            value=snapshot.sessions_today,
        )
        oldest = GaugeMetricFamily(
            "jada_agent_needs_you_oldest_timestamp_seconds",
            "Since when the longest-waiting needs_you task has waited for a person (unix time).",
        )
        if snapshot.needs_you_oldest is not None:
            oldest.add_metric([], snapshot.needs_you_oldest)
        yield oldest


class Metrics:
    """The orchestrator's registry and the metrics updated where events happen."""

    def __init__(
        self,
        max_turns: int,
        daily_sessions: int,
        snapshot: Callable[[], Snapshot] | None = None,
        models: tuple[str, ...] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        Gauge("jada_agent_build_info", "jada-agent build; always 1.", ["version"], registry=r).labels(
            __version__
        ).set(1)
        self.sessions_started = Counter(
            "jada_agent_sessions_started",
            "Agent sessions started (each spends one of the day's budget).",
            registry=r,
        )
        self.session_exits = Counter(
            "jada_agent_session_exits", "Agent sessions ended, by exit reason.", ["reason"], registry=r
        )
        self.session_turns = Histogram(
            "jada_agent_session_turns",
            "Turns (Messages API calls) used per session, by exit reason.",
            ["reason"],
            buckets=TURN_BUCKETS,
            registry=r,
        )
        for reason in EXIT_REASONS:
            self.session_exits.labels(reason)
            self.session_turns.labels(reason)
        Gauge("jada_agent_session_turn_limit", "Turn budget of one session.", registry=r).set(max_turns)
        Gauge("jada_agent_daily_session_limit", "Sessions allowed per UTC day.", registry=r).set(
            daily_sessions
        )
        self.llm_requests = Counter(
            "jada_agent_llm_requests",
            "Claude Messages API calls by model and outcome.",
            ["model", "outcome"],
            registry=r,
        )
        self.llm_request_duration = Histogram(
            "jada_agent_llm_request_duration_seconds",
            "Duration of Claude Messages API calls, retries included.",
            ["model"],
            buckets=LLM_DURATION_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "jada_agent_llm_tokens",
            "Claude API tokens by model and kind.",
            ["model", "token_type"],
            registry=r,
        )
        self.session_events_malformed = Counter(
            "jada_agent_session_events_malformed",
            "Lines from a session child's event stream that could not be understood.",
            registry=r,
        )
        for model in models:
            for outcome in LLM_OUTCOMES:
                self.llm_requests.labels(model, outcome)
            for token_type in TOKEN_TYPES:
                self.llm_tokens.labels(model, token_type)
            self.llm_request_duration.labels(model)
        if snapshot is not None:
            r.register(StoreCollector(snapshot))

    def register(self, collector: Collector) -> None:
        """Add another collector (the scheduler's job and credential metrics) to the registry."""
        self.registry.register(collector)

    def session_started(self) -> None:
        """Count a session start."""
        self.sessions_started.inc()

    def session_exited(self, reason: str, turns: int) -> None:
        """Count a session's end and the turns it used."""
        self.session_exits.labels(reason).inc()
        self.session_turns.labels(reason).observe(turns)

    def llm_request(
        self, model: str, outcome: str, duration_seconds: float, usage: Mapping[str, int]
    ) -> None:
        """Count one Messages API call, its duration and its tokens."""
        self.llm_requests.labels(model, outcome).inc()
        self.llm_request_duration.labels(model).observe(duration_seconds)
        for token_type in TOKEN_TYPES:
            count = usage.get(token_type, 0)
            if count:
                self.llm_tokens.labels(model, token_type).inc(count)

    def exposition(self) -> bytes:
        """Render the registry in the Prometheus text format."""
        return generate_latest(self.registry)
