"""The Lightsail collector through a real boto3 client and botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from prometheus_client import CollectorRegistry

from exporter.collector import ExporterCollector
from exporter.lightsail import LOOKBACK_PERIODS, SPECS, LightsailCollector, latest_value

NOW = datetime(2026, 5, 13, 15, 0, tzinfo=UTC)
INSTANCE = "jada-agent"


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client() -> Iterator[Any]:
    # Dummy keys keep botocore from searching the host for real ones.
    client = boto3.client(
        "lightsail", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    yield client


def answer(metric: str, value: float, statistic: str, unit: str, age_minutes: int = 1) -> dict[str, Any]:
    """Build a get_instance_metric_data answer with an older decoy point before the newest."""
    return {
        "metricName": metric,
        "metricData": [
            {statistic.lower(): value, "timestamp": NOW - timedelta(minutes=age_minutes), "unit": unit},
            {statistic.lower(): 99.0, "timestamp": NOW - timedelta(minutes=age_minutes + 10), "unit": unit},
        ],
    }


VALUES = {
    "StatusCheckFailed": 1.0,
    "StatusCheckFailed_Instance": 0.0,
    "StatusCheckFailed_System": 1.0,
    "CPUUtilization": 12.5,
    "BurstCapacityPercentage": 40.0,
}


def expect(stubber: Stubber, names: tuple[str, ...] | None = None) -> None:
    """Queue one answer for each named metric (all, by default), checking the request."""
    for spec in SPECS:
        if names is not None and spec.name not in names:
            continue
        stubber.add_response(
            "get_instance_metric_data",
            answer(spec.name, VALUES[spec.name], spec.statistic, spec.unit),
            expected_params={
                "instanceName": INSTANCE,
                "metricName": spec.name,
                "period": spec.period,
                "startTime": NOW - timedelta(seconds=spec.period * LOOKBACK_PERIODS),
                "endTime": NOW,
                "unit": spec.unit,
                "statistics": [spec.statistic],
            },
        )


def registry_for(collector: LightsailCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ExporterCollector([collector]))
    return registry


def test_the_newest_datapoint_wins() -> None:
    response = answer("CPUUtilization", 12.5, "Average", "Percent")
    assert latest_value(response, "Average") == 12.5
    assert latest_value({"metricData": []}, "Average") is None


def test_metrics_become_status_checks_and_ratios(client: Any) -> None:
    clock = Clock()
    collector = LightsailCollector(client, INSTANCE, clock=clock, now=lambda: NOW)
    registry = registry_for(collector)
    with Stubber(client) as stubber:
        expect(stubber)
        families = {f.name: f for f in registry.collect()}
        stubber.assert_no_pending_responses()

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    base = (("instance_name", INSTANCE),)
    assert samples[("jada_lightsail_status_check_failed", (("check", "any"), *base))] == 1
    assert samples[("jada_lightsail_status_check_failed", (("check", "instance"), *base))] == 0
    assert samples[("jada_lightsail_status_check_failed", (("check", "system"), *base))] == 1
    assert samples[("jada_lightsail_cpu_utilization_ratio", base)] == 0.125
    assert samples[("jada_lightsail_burst_capacity_ratio", base)] == 0.4
    assert samples[("jada_exporter_collector_success", (("collector", "lightsail"),))] == 1


def test_each_metric_is_fetched_at_most_once_per_its_period(client: Any) -> None:
    clock = Clock()
    registry = registry_for(LightsailCollector(client, INSTANCE, clock=clock, now=lambda: NOW))
    with Stubber(client) as stubber:
        expect(stubber)
        registry.get_sample_value("jada_lightsail_burst_capacity_ratio", {"instance_name": INSTANCE})
        stubber.assert_no_pending_responses()
        # Within a minute nothing is asked again: the Stubber would raise on an unexpected call.
        clock.now = 59.0
        assert (
            registry.get_sample_value("jada_lightsail_burst_capacity_ratio", {"instance_name": INSTANCE})
            == 0.4
        )
        # After 60 s only the 60 s status checks are due; CPU and burst wait for 300 s.
        clock.now = 60.0
        expect(stubber, ("StatusCheckFailed", "StatusCheckFailed_Instance", "StatusCheckFailed_System"))
        assert registry.get_sample_value("jada_exporter_collector_success", {"collector": "lightsail"}) == 1
        stubber.assert_no_pending_responses()
        clock.now = 300.0
        expect(stubber)
        assert registry.get_sample_value("jada_exporter_collector_success", {"collector": "lightsail"}) == 1
        stubber.assert_no_pending_responses()


def test_an_api_error_fails_the_collector_counts_and_is_not_retried_within_the_period(client: Any) -> None:
    clock = Clock()
    registry = registry_for(LightsailCollector(client, INSTANCE, clock=clock, now=lambda: NOW))
    with Stubber(client) as stubber:
        expect(stubber, ("StatusCheckFailed", "StatusCheckFailed_Instance"))
        stubber.add_client_error(
            "get_instance_metric_data", service_error_code="AccessDeniedException", http_status_code=403
        )
        expect(stubber, ("CPUUtilization", "BurstCapacityPercentage"))
        first = {
            (s.name, s.labels.get("metric_name", "")): s.value for f in registry.collect() for s in f.samples
        }
        stubber.assert_no_pending_responses()
        clock.now = 30.0
        second = {
            (s.name, s.labels.get("metric_name", "")): s.value for f in registry.collect() for s in f.samples
        }

    for scrape in (first, second):
        assert scrape[("jada_exporter_collector_success", "")] == 0
        assert scrape[("jada_lightsail_api_errors_total", "StatusCheckFailed_System")] == 1
        assert scrape[("jada_lightsail_api_errors_total", "CPUUtilization")] == 0
        # No stale or made-up values while the source is failing.
        assert not any(name.startswith("jada_lightsail_status") for name, _ in scrape)
        assert ("jada_lightsail_burst_capacity_ratio", "") not in scrape


def test_the_collector_recovers_when_the_failed_metric_is_due_again(client: Any) -> None:
    clock = Clock()
    registry = registry_for(LightsailCollector(client, INSTANCE, clock=clock, now=lambda: NOW))
    with Stubber(client) as stubber:
        stubber.add_client_error("get_instance_metric_data", service_error_code="ThrottlingException")
        expect(stubber, tuple(spec.name for spec in SPECS[1:]))
        assert registry.get_sample_value("jada_exporter_collector_success", {"collector": "lightsail"}) == 0
        clock.now = 60.0
        expect(stubber, ("StatusCheckFailed", "StatusCheckFailed_Instance", "StatusCheckFailed_System"))
        assert registry.get_sample_value("jada_exporter_collector_success", {"collector": "lightsail"}) == 1
        stubber.assert_no_pending_responses()
