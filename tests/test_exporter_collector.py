"""The collector wrapper: success, duration, error counting and rate-limited error logs."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import __version__
from exporter.collector import REPEAT_LOG_SECONDS, CollectorError, ExporterCollector, PermanentCollectorError


class Fixed:
    """A collector that yields one gauge."""

    def __init__(self, name: str, value: float) -> None:
        self.name = name
        self.value = value

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(f"test_{self.name}_value", "A fixed value.", value=self.value)


class Failing:
    """A collector that raises whatever it is given, until told to recover."""

    def __init__(self, name: str, exc: Exception) -> None:
        self.name = name
        self.exc: Exception | None = exc

    def collect(self) -> Iterable[Metric]:
        if self.exc is not None:
            raise self.exc
        return [GaugeMetricFamily(f"test_{self.name}_value", "Recovered.", value=1)]


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry_with(*collectors: object, clock: Clock | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    clock = clock or Clock()
    registry.register(ExporterCollector(list(collectors), clock=clock, wall_clock=clock))  # type: ignore[arg-type]
    return registry


def test_each_collector_reports_success_and_duration_and_its_own_metrics() -> None:
    registry = registry_with(Fixed("a", 3), Fixed("b", 4))

    assert registry.get_sample_value("test_a_value") == 3
    assert registry.get_sample_value("test_b_value") == 4
    for name in ("a", "b"):
        assert registry.get_sample_value("jada_exporter_collector_success", {"collector": name}) == 1
        assert registry.get_sample_value("jada_exporter_collector_duration_seconds", {"collector": name}) == 0
        assert registry.get_sample_value("jada_exporter_collector_errors_total", {"collector": name}) == 0
    assert registry.get_sample_value("jada_exporter_build_info", {"version": __version__}) == 1


def scrape_once(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """Collect once and key each sample by name and its collector label."""
    return {(s.name, s.labels.get("collector", "")): s.value for f in registry.collect() for s in f.samples}


def test_a_failing_collector_costs_only_its_own_metrics_and_is_counted() -> None:
    registry = registry_with(Failing("broken", RuntimeError("upstream down")), Fixed("ok", 1))

    first = scrape_once(registry)
    assert first[("jada_exporter_collector_success", "broken")] == 0
    assert first[("jada_exporter_collector_success", "ok")] == 1
    assert first[("test_ok_value", "")] == 1
    assert first[("jada_exporter_collector_errors_total", "broken")] == 1
    assert first[("jada_exporter_collector_errors_total", "ok")] == 0
    assert scrape_once(registry)[("jada_exporter_collector_errors_total", "broken")] == 2


def test_a_collector_error_keeps_the_families_it_carries() -> None:
    kept = CounterMetricFamily("test_api_errors_total", "Kept even on failure.", value=5)
    registry = registry_with(Failing("api", CollectorError("throttled", families=[kept])))

    assert registry.get_sample_value("test_api_errors_total") == 5
    assert registry.get_sample_value("jada_exporter_collector_success", {"collector": "api"}) == 0


def test_a_permanent_failure_is_logged_once_however_many_scrapes(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    registry = registry_with(
        Failing("unit", PermanentCollectorError("systemd is not running here")), clock=clock
    )

    with caplog.at_level(logging.INFO, logger="exporter"):
        for _ in range(5):
            registry.get_sample_value("jada_exporter_collector_success", {"collector": "unit"})
            clock.now += REPEAT_LOG_SECONDS
    assert [r.getMessage() for r in caplog.records] == ["collector unit failed: systemd is not running here"]


def test_a_transient_failure_is_logged_again_only_after_the_repeat_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failing = Failing("lightsail", RuntimeError("timed out"))
    registry = registry_with(failing, clock=clock)

    with caplog.at_level(logging.INFO, logger="exporter"):
        registry.get_sample_value("jada_exporter_collector_success")
        clock.now += REPEAT_LOG_SECONDS - 1
        registry.get_sample_value("jada_exporter_collector_success")
        clock.now += 1
        registry.get_sample_value("jada_exporter_collector_success")
        failing.exc = None
        registry.get_sample_value("jada_exporter_collector_success")
    assert [r.getMessage() for r in caplog.records] == [
        "collector lightsail failed: RuntimeError: timed out",
        "collector lightsail failed: RuntimeError: timed out",
        "collector lightsail recovered",
    ]


def test_a_new_failure_message_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    failing = Failing("unit", CollectorError("systemctl show timed out"))
    registry = registry_with(failing)

    with caplog.at_level(logging.INFO, logger="exporter"):
        registry.get_sample_value("jada_exporter_collector_success")
        failing.exc = CollectorError("systemctl show failed: exit code 4")
        registry.get_sample_value("jada_exporter_collector_success")
    assert len(caplog.records) == 2


def test_close_closes_the_collectors_that_hold_resources() -> None:
    class Holding(Fixed):
        closed = False

        def close(self) -> None:
            self.closed = True

    holding = Holding("journal", 1)
    exporter = ExporterCollector([holding, Fixed("host", 1)])

    exporter.close()
    assert holding.closed
