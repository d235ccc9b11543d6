"""AWS Lightsail instance metrics: status checks, CPU and burst capacity.

Each metric is fetched with ``get_instance_metric_data`` at most once per its own period
(the API has nothing newer in between), and credentials come from boto3's standard chain,
the instance role in production. Sample::

    # HELP jada_lightsail_status_check_failed 1 when the latest Lightsail status check failed.
    # TYPE jada_lightsail_status_check_failed gauge
    jada_lightsail_status_check_failed{check="system",instance_name="jada-agent"} 0.0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collector import CollectorError


@dataclass(frozen=True)
class MetricSpec:
    """How to ask Lightsail for one metric."""

    name: str
    period: int
    unit: str
    statistic: str


SPECS = (
    MetricSpec("StatusCheckFailed", 60, "Count", "Maximum"),
    MetricSpec("StatusCheckFailed_Instance", 60, "Count", "Maximum"),
    MetricSpec("StatusCheckFailed_System", 60, "Count", "Maximum"),
    MetricSpec("CPUUtilization", 300, "Percent", "Average"),
    MetricSpec("BurstCapacityPercentage", 300, "Percent", "Average"),
)
CHECKS = {
    "StatusCheckFailed": "any",
    "StatusCheckFailed_Instance": "instance",
    "StatusCheckFailed_System": "system",
}
# Datapoints land a few minutes late; asking for several periods finds the latest one.
LOOKBACK_PERIODS = 5


def make_client(region: str, endpoint_url: str | None = None) -> Any:
    """Create a boto3 Lightsail client with the standard credential chain."""
    # boto3 costs tens of MB; only an exporter with Lightsail switched on pays for it.
    import boto3

    return boto3.client("lightsail", region_name=region, endpoint_url=endpoint_url)


def latest_value(response: dict[str, Any], statistic: str) -> float | None:
    """Return the newest datapoint's statistic from a get_instance_metric_data answer."""
    points = [p for p in response.get("metricData", []) if statistic.lower() in p and "timestamp" in p]
    if not points:
        return None
    return float(max(points, key=lambda p: p["timestamp"])[statistic.lower()])


@dataclass
class _Fetched:
    at: float
    value: float | None = None
    error: str | None = None


class LightsailCollector:
    """Collect one Lightsail instance's metrics through a boto3 client."""

    name = "lightsail"

    def __init__(
        self,
        client: Any,
        instance_name: str,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.instance_name = instance_name
        self._client = client
        self._clock = clock
        self._now = now
        self._fetched: dict[str, _Fetched] = {}
        self._api_errors = {spec.name: 0 for spec in SPECS}

    def collect(self) -> Iterable[Metric]:
        """Yield the instance's metric families; raise when an API call failed this period."""
        for spec in SPECS:
            fetched = self._fetched.get(spec.name)
            if fetched is None or self._clock() - fetched.at >= spec.period:
                self._fetched[spec.name] = self._fetch(spec)
        errors = [f"{name}: {f.error}" for name, f in self._fetched.items() if f.error is not None]
        if errors:
            # Last period's values would be stale: only the error counter stays true.
            raise CollectorError("; ".join(errors), families=[self._errors_family()])
        return [*self._value_families(), self._errors_family()]

    def _fetch(self, spec: MetricSpec) -> _Fetched:
        from botocore.exceptions import BotoCoreError, ClientError

        at = self._clock()
        end = self._now()
        try:
            response = self._client.get_instance_metric_data(
                instanceName=self.instance_name,
                metricName=spec.name,
                period=spec.period,
                startTime=end - timedelta(seconds=spec.period * LOOKBACK_PERIODS),
                endTime=end,
                unit=spec.unit,
                statistics=[spec.statistic],
            )
        except ClientError as exc:
            self._api_errors[spec.name] += 1
            return _Fetched(at, error=f"{exc.response.get('Error', {}).get('Code', 'ClientError')}")
        except BotoCoreError as exc:
            self._api_errors[spec.name] += 1
            return _Fetched(at, error=type(exc).__name__)
        return _Fetched(at, value=latest_value(response, spec.statistic))

    def _value(self, name: str) -> float | None:
        return self._fetched[name].value

    def _value_families(self) -> list[Metric]:
        labels = [self.instance_name]
        checks = GaugeMetricFamily(
            "jada_lightsail_status_check_failed",
            "1 when the latest Lightsail status check failed.",
            labels=["instance_name", "check"],
        )
        for name, check in CHECKS.items():
            value = self._value(name)
            if value is not None:
                checks.add_metric([*labels, check], 1.0 if value > 0 else 0.0)
        burst = GaugeMetricFamily(
            "jada_lightsail_burst_capacity_ratio",
            "CPU burst capacity left, 0 to 1.",
            labels=["instance_name"],
        )
        if (value := self._value("BurstCapacityPercentage")) is not None:
            burst.add_metric(labels, value / 100)
        cpu = GaugeMetricFamily(
            "jada_lightsail_cpu_utilization_ratio",
            "CPU utilization as Lightsail measures it, 0 to 1.",
            labels=["instance_name"],
        )
        if (value := self._value("CPUUtilization")) is not None:
            cpu.add_metric(labels, value / 100)
        return [checks, burst, cpu]

    def _errors_family(self) -> Metric:
        errors = CounterMetricFamily(
            "jada_lightsail_api_errors_total",
            "Failed get_instance_metric_data calls.",
            labels=["instance_name", "metric_name"],
        )
        for name, count in self._api_errors.items():
            errors.add_metric([self.instance_name, name], count)
        return errors
