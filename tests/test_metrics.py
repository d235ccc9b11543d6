"""The orchestrator's metrics: contract names, store-derived gauges, promtool on the output."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from orchestrator.metrics import LLM_OUTCOMES, Metrics
from orchestrator.store import EXIT_REASONS, STATES, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "jada.db") as opened:
        yield opened


def metrics_for(store: Store) -> Metrics:
    return Metrics(30, 5, snapshot=store.snapshot, models=("claude-sonnet-4-5",))


def test_contract_metrics_exist_before_any_event(store: Store) -> None:
    metrics = metrics_for(store)
    get = metrics.registry.get_sample_value
    assert get("jada_agent_build_info", {"version": "0.1.0"}) == 1
    assert get("jada_agent_sessions_started_total") == 0
    for reason in EXIT_REASONS:
        assert get("jada_agent_session_exits_total", {"reason": reason}) == 0
        assert get("jada_agent_session_turns_count", {"reason": reason}) == 0
    for state in STATES:
        assert get("jada_agent_tasks", {"state": state}) == 0
    for outcome in LLM_OUTCOMES:
        assert get("jada_agent_llm_requests_total", {"model": "claude-sonnet-4-5", "outcome": outcome}) == 0
    assert get("jada_agent_session_turn_limit") == 30
    assert get("jada_agent_daily_session_limit") == 5
    assert get("jada_agent_daily_sessions_used") == 0
    assert get("jada_agent_store_up") == 1
    assert get("process_resident_memory_bytes") > 0


def test_session_events_update_counters_and_the_turns_histogram(store: Store) -> None:
    metrics = metrics_for(store)
    metrics.session_started()
    metrics.session_exited("max_turns", 30)
    get = metrics.registry.get_sample_value
    assert get("jada_agent_sessions_started_total") == 1
    assert get("jada_agent_session_exits_total", {"reason": "max_turns"}) == 1
    assert get("jada_agent_session_turns_bucket", {"reason": "max_turns", "le": "29.0"}) == 0
    assert get("jada_agent_session_turns_bucket", {"reason": "max_turns", "le": "30.0"}) == 1


def test_llm_requests_count_outcome_duration_and_tokens(store: Store) -> None:
    metrics = metrics_for(store)
    usage = {"input": 100, "output": 20, "cache_read": 900, "cache_creation": 50}
    metrics.llm_request("claude-sonnet-4-5", "success", 0.4, usage)
    metrics.llm_request("claude-sonnet-4-5", "overloaded", 2.0, {})
    get = metrics.registry.get_sample_value
    model = {"model": "claude-sonnet-4-5"}
    assert get("jada_agent_llm_requests_total", {**model, "outcome": "overloaded"}) == 1
    assert get("jada_agent_llm_request_duration_seconds_count", model) == 2
    assert get("jada_agent_llm_request_duration_seconds_sum", model) == pytest.approx(2.4)
    for token_type, count in usage.items():
        assert get("jada_agent_llm_tokens_total", {**model, "token_type": token_type}) == count


def test_queue_gauges_are_read_from_the_store_at_scrape_time(store: Store) -> None:
    metrics = metrics_for(store)
    parent = store.add_task("E-signature", "x")
    question = store.request_human(parent, "Which provider?")
    store.start_session(store.add_task("Refactor", "y"), day_limit=5)
    get = metrics.registry.get_sample_value
    assert get("jada_agent_tasks", {"state": "needs_you"}) == 1
    assert get("jada_agent_tasks", {"state": "running"}) == 1
    assert get("jada_agent_tasks", {"state": "queued"}) == 1
    assert get("jada_agent_daily_sessions_used") == 1
    since = store.get_task(question).needs_you_since
    assert get("jada_agent_needs_you_oldest_timestamp_seconds") == since


def test_no_needs_you_sample_when_nothing_waits(store: Store) -> None:
    store.add_task("a", "a")
    assert (
        metrics_for(store).registry.get_sample_value("jada_agent_needs_you_oldest_timestamp_seconds") is None
    )


def test_an_unreadable_store_reports_store_up_0_and_no_made_up_queue() -> None:
    def broken() -> None:
        raise StoreError("database is locked")

    metrics = Metrics(30, 5, snapshot=broken)
    get = metrics.registry.get_sample_value
    assert get("jada_agent_store_up") == 0
    assert get("jada_agent_tasks", {"state": "queued"}) is None
    assert get("jada_agent_daily_sessions_used") is None


def test_other_parts_can_register_collectors_on_the_same_registry(store: Store) -> None:
    class JobCollector:
        def collect(self) -> Iterator[Metric]:
            yield GaugeMetricFamily("jada_agent_job_last_success_timestamp_seconds", "x", value=1.0)

    metrics = metrics_for(store)
    metrics.register(JobCollector())
    assert metrics.registry.get_sample_value("jada_agent_job_last_success_timestamp_seconds") == 1.0


def test_no_label_is_called_job_instance_or_type(store: Store) -> None:
    metrics = metrics_for(store)
    labels = {name for family in metrics.registry.collect() for s in family.samples for name in s.labels}
    assert labels.isdisjoint({"job", "instance", "type"})


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is installed by scripts/bootstrap")
def test_promtool_accepts_the_exposition(store: Store) -> None:
    metrics = metrics_for(store)
    store.request_human(store.add_task("a", "a"), "?")
    metrics.session_started()
    metrics.session_exited("completed", 3)
    metrics.llm_request("claude-sonnet-4-5", "success", 0.2, {"input": 3})
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=metrics.exposition(), capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().strip() == result.stderr.decode().strip() == ""


GOLDEN = Path(__file__).parent / "golden" / "orchestrator_metrics.prom"


def stable_lines(exposition: bytes) -> str:
    """Drop what varies from run to run: process and platform metrics, _created timestamps."""
    lines = exposition.decode().splitlines(keepends=True)
    varying = ("process_", "python_")
    kept = []
    for line in lines:
        name = line.split(" ", 3)[2] if line.startswith("#") else line.split("{", 1)[0].split(" ", 1)[0]
        if name.startswith(varying) or name.endswith("_created"):
            continue
        kept.append(line)
    return "".join(kept)


def test_metrics_page_after_the_seed_day_matches_the_golden_file(tmp_path: Path) -> None:
    """Regenerate after an intended change: UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_metrics.py"""
    with freeze_time("2026-05-13 00:00:00"), Store(tmp_path / "jada.db") as store:
        metrics = Metrics(30, 5, snapshot=store.snapshot, models=("claude-sonnet-4-6",))
        refactor = store.add_task("Refactor the crew page generator", "x")
        blockers = store.add_task("Clear the e-signature blockers", "y")
        for task, reason, turns in ((refactor, "max_turns", 30), (blockers, "completed", 2)):
            session = store.start_session(task, day_limit=5)
            metrics.session_started()
            for _ in range(turns):
                usage = {"input": 1200, "output": 300, "cache_read": 4000, "cache_creation": 0}
                metrics.llm_request("claude-sonnet-4-6", "success", 1.5, usage)
            store.finish_session(session, reason, 0 if reason == "completed" else 1, turns)
            metrics.session_exited(reason, turns)
        store.release_task(refactor, "queued")
        store.release_task(blockers, "done")
        store.request_human(blockers, "Which signing provider?")
        page = stable_lines(metrics.exposition())
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(page)
    assert page == GOLDEN.read_text()
