"""The scheduled-job and credential half of the ``jada_agent_`` metric contract.

Counters and the duration histogram are updated by the scheduler when a run ends; the last
success time is read from the store at scrape time, so it survives a daemon restart and has
no sample for a job that never succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.jobs import RESULTS, JobResult
from orchestrator.log import logger
from orchestrator.tokenerror import TokenError

DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# Label children created at start-up for each credential, so that the errors an alert
# waits for exist at 0 before the first one happens.
EXPECTED_TOKEN_ERRORS = (
    ("400", "invalid_grant", "false"),
    ("401", "invalid_client", "false"),
    ("none", "none", "true"),
)


class LastSuccessCollector(Collector):
    """Expose each job's last success time, read from the store at scrape time.

    # HELP jada_agent_job_last_success_timestamp_seconds When the job last succeeded (unix time).
    # TYPE jada_agent_job_last_success_timestamp_seconds gauge
    jada_agent_job_last_success_timestamp_seconds{job_name="port_sheet_sync"} 1.7786826e+09
    """

    def __init__(self, job_names: Iterable[str], last_success: Callable[[str], float | None]) -> None:
        self._job_names = tuple(job_names)
        self._last_success = last_success

    def collect(self) -> Iterator[Metric]:
        """Yield one sample per job that has ever succeeded."""
        family = GaugeMetricFamily(
            "jada_agent_job_last_success_timestamp_seconds",
            "When the job last finished successfully (unix time); no sample if it never did.",
            labels=["job_name"],
        )
        for name in self._job_names:
            try:
                when = self._last_success(name)
            except Exception as exc:
                # A store that cannot be read must not break the scrape; no sample is honest.
                logger.log(logging.ERROR, "[metrics] cannot read job runs for %s: %s", name, exc)
                continue
            if when is not None:
                family.add_metric([name], when)
        yield family


class JobMetrics:
    """Job and credential metrics, registered on the orchestrator's registry."""

    def __init__(
        self,
        registry: CollectorRegistry,
        jobs: dict[str, float],
        credentials: Iterable[str],
        last_success: Callable[[str], float | None],
    ) -> None:
        self.runs = Counter(
            "jada_agent_job_runs",
            "Scheduled job runs by result (success, failure, timeout, skipped).",
            ["job_name", "result"],
            registry=registry,
        )
        self.duration = Histogram(
            "jada_agent_job_duration_seconds",
            "Wall-clock duration of scheduled job runs.",
            ["job_name"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        interval = Gauge(
            "jada_agent_job_interval_seconds",
            "How often the job is scheduled to run.",
            ["job_name"],
            registry=registry,
        )
        self.token_errors = Counter(
            "jada_agent_token_refresh_errors",
            "Failed OAuth token refreshes by HTTP status, OAuth error and whether retrying can help.",
            ["credential", "status_code", "oauth_error", "retryable"],
            registry=registry,
        )
        self.credential_ok = Gauge(
            "jada_agent_credential_ok",
            "1 when the credential last refreshed fine and its file is sane, 0 otherwise.",
            ["credential"],
            registry=registry,
        )
        self.credential_file_insecure = Gauge(
            "jada_agent_credential_file_insecure",
            "1 when the credential file is readable by others or not owned by the service user.",
            ["credential"],
            registry=registry,
        )
        for name, seconds in jobs.items():
            interval.labels(name).set(seconds)
            self.duration.labels(name)
            for result in RESULTS:
                self.runs.labels(name, result)
        for credential in credentials:
            for labels in EXPECTED_TOKEN_ERRORS:
                self.token_errors.labels(credential, *labels)
        registry.register(LastSuccessCollector(jobs, last_success))

    def run_finished(self, job_name: str, result: str, duration_seconds: float | None) -> None:
        """Count a run's result and observe its duration (skipped runs have none)."""
        self.runs.labels(job_name, result).inc()
        if duration_seconds is not None:
            self.duration.labels(job_name).observe(duration_seconds)

    def token_error(self, error: TokenError) -> None:
        """Count a failed refresh."""
        self.token_errors.labels(
            error.credential, error.status_code, error.oauth_error, str(error.retryable).lower()
        ).inc()

    def credential_checked(self, name: str, ok: bool | None, insecure: bool | None) -> None:
        """Set a credential's health gauges; None leaves a gauge as it is."""
        if ok is not None:
            self.credential_ok.labels(name).set(1 if ok else 0)
        if insecure is not None:
            self.credential_file_insecure.labels(name).set(1 if insecure else 0)

    def job_result(self, result: JobResult) -> None:
        """Apply a run's credential report: token error, credential_ok, file insecure."""
        if result.token_error is not None:
            self.token_error(result.token_error)
        for name, ok in result.credential_ok.items():
            self.credential_checked(name, ok, None)
        for name, insecure in result.credential_file_insecure.items():
            self.credential_checked(name, None, insecure)


def registry_of(metrics: Any) -> CollectorRegistry:
    """Accept the orchestrator's Metrics object or a bare registry."""
    return metrics.registry if hasattr(metrics, "registry") else metrics
