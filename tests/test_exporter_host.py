"""The host collector: psutil readings turned into jada_host_* metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.host import Filesystem, HostCollector, HostSnapshot, read_host, wanted_mount

SNAPSHOT = HostSnapshot(
    cpu_seconds={"user": 120.5, "system": 30.25, "idle": 9000.0, "iowait": 2.0},
    memory_total_bytes=914 * 2**20,
    memory_available_bytes=600 * 2**20,
    filesystems=[Filesystem("/", "ext4", 39e9, 32.8e9), Filesystem("/boot/efi", "vfat", 1e8, 9e7)],
    load=(0.5, 0.25, 0.125),
    boot_time_seconds=1778400000.0,
)


def test_a_snapshot_becomes_host_metrics() -> None:
    registry = CollectorRegistry()
    registry.register(HostCollector(read=lambda: SNAPSHOT))

    assert registry.get_sample_value("jada_host_cpu_seconds_total", {"mode": "user"}) == 120.5
    assert registry.get_sample_value("jada_host_cpu_seconds_total", {"mode": "iowait"}) == 2.0
    assert registry.get_sample_value("jada_host_memory_total_bytes") == 914 * 2**20
    assert registry.get_sample_value("jada_host_memory_available_bytes") == 600 * 2**20
    root = {"mountpoint": "/", "fstype": "ext4"}
    assert registry.get_sample_value("jada_host_filesystem_size_bytes", root) == 39e9
    assert registry.get_sample_value("jada_host_filesystem_available_bytes", root) == 32.8e9
    efi = {"mountpoint": "/boot/efi", "fstype": "vfat"}
    assert registry.get_sample_value("jada_host_filesystem_size_bytes", efi) == 1e8
    assert registry.get_sample_value("jada_host_load1") == 0.5
    assert registry.get_sample_value("jada_host_load5") == 0.25
    assert registry.get_sample_value("jada_host_load15") == 0.125
    assert registry.get_sample_value("jada_host_boot_time_seconds") == 1778400000.0


def test_pseudo_and_container_filesystems_are_left_out() -> None:
    assert wanted_mount("/", "ext4")
    assert wanted_mount("/srv/data", "xfs")
    assert not wanted_mount("/proc", "proc")
    assert not wanted_mount("/sys/fs/cgroup/memory", "cgroup")
    assert not wanted_mount("/dev/shm", "tmpfs")
    assert not wanted_mount("/snap/core/1", "squashfs")
    assert not wanted_mount("/var/lib/docker/overlay2/abc/merged", "ext4")
    assert not wanted_mount("/run/credentials/jada-agent.service", "ramfs")


def test_this_host_reads_without_pseudo_filesystems() -> None:
    snapshot = read_host()

    assert snapshot.memory_total_bytes >= snapshot.memory_available_bytes > 0
    assert {"user", "system", "idle"} <= set(snapshot.cpu_seconds)
    assert "guest" not in snapshot.cpu_seconds
    assert snapshot.boot_time_seconds > 1e9
    mountpoints = [fs.mountpoint for fs in snapshot.filesystems]
    assert len(mountpoints) == len(set(mountpoints))
    assert all(wanted_mount(fs.mountpoint, fs.fstype) for fs in snapshot.filesystems)
