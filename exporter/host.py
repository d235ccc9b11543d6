"""Host metrics from psutil: CPU, memory, filesystems, load and boot time.

Sample::

    # HELP jada_host_memory_available_bytes Memory available to start new programs without swapping.
    # TYPE jada_host_memory_available_bytes gauge
    jada_host_memory_available_bytes 6.1e+08
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import psutil
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

# node_exporter's defaults for the filesystem collector: pseudo and container-internal
# filesystems say nothing about whether the disk is filling up.
EXCLUDED_MOUNTPOINTS = re.compile(
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
EXCLUDED_FSTYPES = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue"
    r"|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$"
)
# guest and guest_nice are already part of user and nice in the kernel's accounting;
# summing every mode must give the wall time the CPUs had.
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class Filesystem:
    """One mounted filesystem's size."""

    mountpoint: str
    fstype: str
    size_bytes: float
    available_bytes: float


@dataclass(frozen=True)
class HostSnapshot:
    """Everything the host collector exposes, read at one moment."""

    cpu_seconds: Mapping[str, float]
    memory_total_bytes: float
    memory_available_bytes: float
    filesystems: Sequence[Filesystem]
    load: tuple[float, float, float]
    boot_time_seconds: float


def wanted_mount(mountpoint: str, fstype: str) -> bool:
    """Tell whether a mount is a real filesystem worth reporting."""
    return not (EXCLUDED_MOUNTPOINTS.match(mountpoint) or EXCLUDED_FSTYPES.match(fstype))


def read_host() -> HostSnapshot:
    """Read a snapshot of the host through psutil."""
    times = psutil.cpu_times()
    memory = psutil.virtual_memory()
    filesystems = []
    seen = set()
    for part in psutil.disk_partitions(all=True):
        if part.mountpoint in seen or not wanted_mount(part.mountpoint, part.fstype):
            continue
        seen.add(part.mountpoint)
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            # A mount can vanish or be unreadable (stale NFS, permissions) between listing
            # and statfs; it is skipped rather than failing every other host metric.
            continue
        filesystems.append(Filesystem(part.mountpoint, part.fstype, usage.total, usage.total - usage.used))
    return HostSnapshot(
        cpu_seconds={mode: getattr(times, mode) for mode in CPU_MODES if hasattr(times, mode)},
        memory_total_bytes=memory.total,
        memory_available_bytes=memory.available,
        filesystems=filesystems,
        load=psutil.getloadavg(),
        boot_time_seconds=psutil.boot_time(),
    )


def host_families(snapshot: HostSnapshot) -> list[Metric]:
    """Turn a host snapshot into metric families."""
    cpu = CounterMetricFamily(
        "jada_host_cpu_seconds_total", "CPU time spent in each mode, summed over CPUs.", labels=["mode"]
    )
    for mode, seconds in snapshot.cpu_seconds.items():
        cpu.add_metric([mode], seconds)
    size = GaugeMetricFamily(
        "jada_host_filesystem_size_bytes", "Filesystem size.", labels=["mountpoint", "fstype"]
    )
    available = GaugeMetricFamily(
        "jada_host_filesystem_available_bytes",
        "Filesystem space available to unprivileged users.",
        labels=["mountpoint", "fstype"],
    )
    for fs in snapshot.filesystems:
        size.add_metric([fs.mountpoint, fs.fstype], fs.size_bytes)
        available.add_metric([fs.mountpoint, fs.fstype], fs.available_bytes)
    load1, load5, load15 = snapshot.load
    return [
        cpu,
        GaugeMetricFamily("jada_host_memory_total_bytes", "Total memory.", value=snapshot.memory_total_bytes),
        GaugeMetricFamily(
            "jada_host_memory_available_bytes",
            "Memory available to start new programs without swapping.",
            value=snapshot.memory_available_bytes,
        ),
        size,
        available,
        GaugeMetricFamily("jada_host_load1", "1-minute load average.", value=load1),
        GaugeMetricFamily("jada_host_load5", "5-minute load average.", value=load5),
        GaugeMetricFamily("jada_host_load15", "15-minute load average.", value=load15),
        GaugeMetricFamily(
            "jada_host_boot_time_seconds",
            "When the host booted, in Unix time.",
            value=snapshot.boot_time_seconds,
        ),
    ]


class HostCollector:
    """Collect host metrics; ``read`` is the snapshot source, psutil unless a test says otherwise."""

    name = "host"

    def __init__(self, read: Callable[[], HostSnapshot] = read_host) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        """Yield the host's metric families."""
        return host_families(self._read())
