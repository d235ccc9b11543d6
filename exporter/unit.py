"""The orchestrator's systemd unit: state, restarts, start time, main process CPU and memory.

It asks ``systemctl show`` (a timeout bounds it) rather than D-Bus, which needs no extra
library and reads the same properties. Sample::

    # HELP jada_unit_state 1 for the unit's current active state, 0 for the others.
    # TYPE jada_unit_state gauge
    jada_unit_state{state="active",unit="jada-agent.service"} 1.0
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collector import CollectorError, PermanentCollectorError

ACTIVE_STATES = ("active", "reloading", "inactive", "failed", "activating", "deactivating")
# A service's sub-states (systemd's service_state_table); a crash loop shows as auto-restart.
SUB_STATES = (
    "dead",
    "condition",
    "start-pre",
    "start",
    "start-post",
    "running",
    "exited",
    "reload",
    "stop",
    "stop-watchdog",
    "stop-sigterm",
    "stop-sigkill",
    "stop-post",
    "final-watchdog",
    "final-sigterm",
    "final-sigkill",
    "failed",
    "auto-restart",
    "cleaning",
)
PROPERTIES = ("LoadState", "ActiveState", "SubState", "NRestarts", "MainPID", "ActiveEnterTimestamp")
# What systemctl says on a host where systemd is not PID 1 or its bus is unreachable.
NO_SYSTEMD_MARKERS = ("not been booted with systemd", "Failed to connect to bus", "Host is down")


@dataclass(frozen=True)
class UnitStatus:
    """The properties of one unit that the collector exposes."""

    active_state: str
    sub_state: str
    restarts: int | None
    main_pid: int
    start_time_seconds: float | None


@dataclass(frozen=True)
class ProcessUsage:
    """CPU time and resident memory of one process."""

    cpu_seconds: float
    rss_bytes: float


def parse_timestamp(value: str) -> float | None:
    """Parse a ``systemctl --timestamp=us+utc`` timestamp into Unix time; empty is None."""
    value = value.strip()
    if not value or value == "n/a":
        return None
    text = value.removesuffix(" UTC")
    # The weekday comes first ("Sun 2026-11-29 ..."); it adds nothing to the date.
    text = text.partition(" ")[2] if text[:1].isalpha() else text
    for layout in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unrecognized systemd timestamp {value!r}")


def parse_show(text: str) -> UnitStatus:
    """Parse ``systemctl show --property=...`` output into a unit status."""
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    missing = [name for name in ("ActiveState", "SubState") if not props.get(name)]
    if missing:
        raise ValueError(f"systemctl show output lacks {', '.join(missing)}")
    restarts = props.get("NRestarts", "")
    return UnitStatus(
        active_state=props["ActiveState"],
        sub_state=props["SubState"],
        restarts=int(restarts) if restarts.isdigit() else None,
        main_pid=int(props.get("MainPID") or 0),
        start_time_seconds=parse_timestamp(props.get("ActiveEnterTimestamp", "")),
    )


def parse_proc_stat(text: str, ticks_per_second: float, page_size: int) -> ProcessUsage:
    """Parse ``/proc/PID/stat`` into CPU seconds (user + system) and resident bytes."""
    # The command name is in parentheses and may itself hold spaces or parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 of proc(5): utime is 14, stime 15, rss 24.
    utime, stime, rss = int(fields[11]), int(fields[12]), int(fields[21])
    return ProcessUsage((utime + stime) / ticks_per_second, float(rss * page_size))


def unit_families(unit: str, status: UnitStatus, usage: ProcessUsage | None) -> list[Metric]:
    """Turn a unit's status and its main process's usage into metric families."""
    state = GaugeMetricFamily(
        "jada_unit_state",
        "1 for the unit's current active state, 0 for the others.",
        labels=["unit", "state"],
    )
    for name in (
        *ACTIVE_STATES,
        *([status.active_state] if status.active_state not in ACTIVE_STATES else []),
    ):
        state.add_metric([unit, name], 1.0 if name == status.active_state else 0.0)
    sub_state = GaugeMetricFamily(
        "jada_unit_sub_state",
        "1 for the unit's current sub-state, 0 for the others.",
        labels=["unit", "sub_state"],
    )
    for name in (*SUB_STATES, *([status.sub_state] if status.sub_state not in SUB_STATES else [])):
        sub_state.add_metric([unit, name], 1.0 if name == status.sub_state else 0.0)
    families: list[Metric] = [state, sub_state]
    if status.restarts is not None:
        restarts = CounterMetricFamily(
            "jada_unit_restarts_total", "Automatic restarts of the unit (NRestarts).", labels=["unit"]
        )
        restarts.add_metric([unit], status.restarts)
        families.append(restarts)
    if status.start_time_seconds is not None:
        start = GaugeMetricFamily(
            "jada_unit_start_time_seconds", "When the unit last became active, in Unix time.", labels=["unit"]
        )
        start.add_metric([unit], status.start_time_seconds)
        families.append(start)
    if usage is not None:
        cpu = CounterMetricFamily(
            "jada_unit_cpu_seconds_total", "CPU time of the unit's main process.", labels=["unit"]
        )
        cpu.add_metric([unit], usage.cpu_seconds)
        rss = GaugeMetricFamily(
            "jada_unit_memory_rss_bytes", "Resident memory of the unit's main process.", labels=["unit"]
        )
        rss.add_metric([unit], usage.rss_bytes)
        families += [cpu, rss]
    return families


class UnitCollector:
    """Collect a systemd unit's state through ``systemctl show``."""

    name = "unit"

    def __init__(
        self,
        unit: str = "jada-agent.service",
        systemctl: Sequence[str] = ("systemctl",),
        proc: Path | str = "/proc",
        timeout: float = 5.0,
    ) -> None:
        self.unit = unit
        self._systemctl = list(systemctl)
        self._proc = Path(proc)
        self._timeout = timeout
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page_size = os.sysconf("SC_PAGE_SIZE")

    def collect(self) -> Iterable[Metric]:
        """Yield the unit's metric families; raise when systemd can't be asked."""
        status = parse_show(self._show())
        return unit_families(self.unit, status, self._usage(status.main_pid))

    def _show(self) -> str:
        command = [
            *self._systemctl,
            "show",
            "--timestamp=us+utc",
            f"--property={','.join(PROPERTIES)}",
            "--",
            self.unit,
        ]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                # Weekday names in timestamps must be English for parse_timestamp.
                env={**os.environ, "LC_ALL": "C"},
                check=False,
            )
        except FileNotFoundError:
            raise PermanentCollectorError(
                f"{self._systemctl[0]} not found: is this a systemd host?"
            ) from None
        except subprocess.TimeoutExpired:
            raise CollectorError(f"systemctl show {self.unit} took longer than {self._timeout}s") from None
        if done.returncode != 0:
            reason = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
            if any(marker in done.stderr for marker in NO_SYSTEMD_MARKERS):
                raise PermanentCollectorError(f"systemd is not running here: {reason}")
            raise CollectorError(f"systemctl show {self.unit} failed: {reason}")
        return done.stdout

    def _usage(self, pid: int) -> ProcessUsage | None:
        if pid <= 0:
            return None
        try:
            text = (self._proc / str(pid) / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            # The main process exited between systemctl and here: no usage to report.
            return None
        return parse_proc_stat(text, self._ticks, self._page_size)
