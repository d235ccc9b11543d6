"""Steady state of jada-exporter beside Debian's prometheus-node-exporter, scraped every 15 s.

Both run as real processes; at each tick both are scraped (in alternating order) and the
scrape latency recorded. At the end: latency medians and their ratio, each process's RSS,
and each one's CPU use over the whole window as a percentage of one core. The exporter's
journal collector reads a fixture journal (written with systemd-journal-remote) that it has
already caught up with, as in production between bursts of log lines.

    .venv/bin/python bench/bench_exporter_scrape.py        # JADA_BENCH_TICKS=8, 15 s apart

Targets (issue 4): latency median no worse than node_exporter's (ratio <= 1), RSS <= 40 MB,
CPU <= 0.5% of a core.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from demo.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from journalfixtures import entry, write_journal  # noqa: E402

INTERVAL_SECONDS = 15.0
TICKS = int(os.environ.get("JADA_BENCH_TICKS", "8"))
WARMUP_SCRAPES = 3
JOURNAL_ENTRIES = 20_000
RSS_TARGET_BYTES = 40 * 2**20
CPU_TARGET_PERCENT = 0.5


def wait_until_up(url: str, deadline_seconds: float = 30) -> None:
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def scrape_seconds(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return time.perf_counter() - start


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    # systemctl runs as a child of the exporter: its CPU is the exporter's cost too.
    return times.user + times.system + times.children_user + times.children_system


def wakeups(pid: int) -> int:
    """Sum the voluntary context switches of a process's live threads."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # the thread ended between listing and reading
        total += int(text.split("voluntary_ctxt_switches:")[1].split()[0])
    return total


def main() -> int:
    node_exporter = shutil.which("prometheus-node-exporter")
    if node_exporter is None:
        print("prometheus-node-exporter is missing: run JADA_BENCH=1 scripts/bootstrap", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="jada-bench-") as tmp:
        journal_dir = Path(tmp) / "journal"
        lines = [
            entry(f"[session] task {i} session {i} exited: max_turns after 30 turns (exit code 1)")
            if i % 10 == 0
            else entry(f"[job] port_sheet_sync finished: success in 0.{i % 10}s")
            for i in range(JOURNAL_ENTRIES)
        ]
        write_journal(journal_dir, lines)
        jada_port, node_port = free_port(), free_port()
        jada = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                f"--web.listen-address=127.0.0.1:{jada_port}",
                f"--journal.directory={journal_dir}",
                f"--journal.state-file={tmp}/state.json",
                "--journal.read-back=all",
                "--log.level=error",
            ],
            cwd=ROOT,
        )
        node = subprocess.Popen(
            [node_exporter, "--no-collector.systemd", f"--web.listen-address=127.0.0.1:{node_port}"],
            stderr=subprocess.DEVNULL,
        )
        try:
            return measure(
                jada, f"http://127.0.0.1:{jada_port}/metrics", node, f"http://127.0.0.1:{node_port}/metrics"
            )
        finally:
            for process in (jada, node):
                process.terminate()
                process.wait(timeout=30)


def measure(
    jada: subprocess.Popen[bytes], jada_url: str, node: subprocess.Popen[bytes], node_url: str
) -> int:
    targets = {"jada-exporter": (jada, jada_url), "node_exporter": (node, node_url)}
    for _, url in targets.values():
        wait_until_up(url)
        # Warm-up: the first jada scrape reads the whole fixture journal.
        for _ in range(WARMUP_SCRAPES):
            scrape_seconds(url)
    handles = {name: psutil.Process(process.pid) for name, (process, _) in targets.items()}
    cpu_before = {name: cpu_seconds(handle) for name, handle in handles.items()}
    wakeups_before = {name: wakeups(handle.pid) for name, handle in handles.items()}
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    start = time.monotonic()
    for tick in range(TICKS):
        order = list(targets) if tick % 2 == 0 else list(reversed(targets))
        for name in order:
            latencies[name].append(scrape_seconds(targets[name][1]))
        next_tick = start + (tick + 1) * INTERVAL_SECONDS
        time.sleep(max(0.0, next_tick - time.monotonic()))
    window = time.monotonic() - start

    print(f"steady state: {TICKS} scrapes each, {INTERVAL_SECONDS:.0f} s apart ({window:.0f} s window)")
    medians = {}
    for name, handle in handles.items():
        medians[name] = statistics.median(latencies[name])
        rss = handle.memory_info().rss
        cpu_percent = 100 * (cpu_seconds(handle) - cpu_before[name]) / window
        # Voluntary context switches of all threads show whether a process sleeps or polls.
        wakeup_rate = (wakeups(handle.pid) - wakeups_before[name]) / window
        print(
            f"  {name:14s} scrape median {medians[name] * 1000:7.2f} ms  "
            f"RSS {rss / 2**20:6.1f} MB  CPU {cpu_percent:5.2f}% of a core  {wakeup_rate:5.1f} wakeups/s"
        )
    ratio = medians["jada-exporter"] / medians["node_exporter"]
    jada_rss = handles["jada-exporter"].memory_info().rss
    jada_cpu = 100 * (cpu_seconds(handles["jada-exporter"]) - cpu_before["jada-exporter"]) / window
    print(f"scrape latency ratio jada/node: {ratio:.2f} (target <= 1.00)")
    print(f"jada-exporter RSS: {jada_rss / 2**20:.1f} MB (target <= {RSS_TARGET_BYTES / 2**20:.0f} MB)")
    print(f"jada-exporter CPU: {jada_cpu:.3f}% of a core (target <= {CPU_TARGET_PERCENT}%)")
    met = ratio <= 1.0 and jada_rss <= RSS_TARGET_BYTES and jada_cpu <= CPU_TARGET_PERCENT
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
