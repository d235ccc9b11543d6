"""Run the exporter's collectors at scrape time and report how each one did.

As node_exporter's ``collector.go`` does, every collector gets a success and a duration
series, and a failing collector costs only its own metrics, never the scrape::

    # HELP jada_exporter_collector_success 1 when the collector's last scrape succeeded.
    # TYPE jada_exporter_collector_success gauge
    jada_exporter_collector_success{collector="host"} 1.0
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import __version__

logger = logging.getLogger(__name__)

# A transient failure is logged again after this long, so a flapping upstream stays
# visible in the journal without one line per scrape.
REPEAT_LOG_SECONDS = 300.0


class Collector(Protocol):
    """Anything with a ``name`` and a ``collect()`` that yields metric families."""

    name: str

    def collect(self) -> Iterable[Metric]:
        """Yield the collector's metric families; raise when the source can't be read."""
        ...


class CollectorError(Exception):
    """A collector failed; ``families`` are its own bookkeeping that stays true anyway."""

    def __init__(self, message: str, families: Sequence[Metric] = ()) -> None:
        super().__init__(message)
        self.families = list(families)


class PermanentCollectorError(CollectorError):
    """A failure that repeats on every scrape until the host changes, e.g. no systemd."""


class ExporterCollector:
    """Run each collector, yield its families, and report its success and duration."""

    def __init__(
        self,
        collectors: Sequence[Collector],
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.monotonic,
        version: str = __version__,
    ) -> None:
        self.collectors = list(collectors)
        self._clock = clock
        self._wall_clock = wall_clock
        self._version = version
        self._errors = {collector.name: 0 for collector in self.collectors}
        # name -> (message, when) of the failure last logged for that collector.
        self._logged: dict[str, tuple[str, float]] = {}
        # Scrapes are serialized: two concurrent scrapes would run systemctl twice and
        # could both miss the Lightsail cache, and neither would be faster for it.
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        """Yield every collector's families, then the exporter's own."""
        with self._lock:
            yield from self._collect_locked()

    def close(self) -> None:
        """Wait for a scrape in progress, then close the collectors that hold resources."""
        with self._lock:
            for collector in self.collectors:
                close = getattr(collector, "close", None)
                if close is not None:
                    close()

    def _collect_locked(self) -> Iterable[Metric]:
        success = GaugeMetricFamily(
            "jada_exporter_collector_success",
            "1 when the collector's last scrape succeeded.",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            "jada_exporter_collector_duration_seconds",
            "How long the collector's last scrape took.",
            labels=["collector"],
        )
        for collector in self.collectors:
            start = self._clock()
            try:
                families = list(collector.collect())
                ok = True
            except CollectorError as exc:
                families = exc.families
                ok = False
                self._failed(collector.name, exc, permanent=isinstance(exc, PermanentCollectorError))
            except Exception as exc:
                families = []
                ok = False
                self._failed(collector.name, exc, permanent=False)
            else:
                self._recovered(collector.name)
            duration.add_metric([collector.name], self._clock() - start)
            success.add_metric([collector.name], 1.0 if ok else 0.0)
            yield from families
        errors = CounterMetricFamily(
            "jada_exporter_collector_errors_total",
            "Scrapes in which the collector failed.",
            labels=["collector"],
        )
        for name, count in self._errors.items():
            errors.add_metric([name], count)
        build_info = GaugeMetricFamily(
            "jada_exporter_build_info", "The exporter's version; always 1.", labels=["version"]
        )
        build_info.add_metric([self._version], 1.0)
        yield from (success, duration, errors, build_info)

    def _failed(self, name: str, exc: Exception, permanent: bool) -> None:
        self._errors[name] += 1
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, CollectorError) else str(exc)
        now = self._wall_clock()
        last = self._logged.get(name)
        if last is not None and last[0] == message and (permanent or now - last[1] < REPEAT_LOG_SECONDS):
            return
        self._logged[name] = (message, now)
        logger.error("collector %s failed: %s", name, message)

    def _recovered(self, name: str) -> None:
        if self._logged.pop(name, None) is not None:
            logger.info("collector %s recovered", name)
