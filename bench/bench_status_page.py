"""The status page and `jada-agent doctor` as the store grows.

1. GET / (the status page, with port_sheet_sync's runs and the credential's health) from a
   real daemon with 100,000 tasks and a year of 30-minute job runs (17,520) in its store,
   beside GET /metrics from the same daemon in the same run as the reference: medians and
   their ratio.
2. `jada-agent doctor` end to end on that store, beside `jada-agent --version` (the
   interpreter and the CLI's imports) as the reference.

    .venv/bin/python bench/bench_status_page.py

Targets: the page's median with 100,000 tasks <= 100 ms (it refreshes every 30 s; a
person waits for it); doctor <= 3 s (it samples CPU for 0.2 s on purpose).
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_daemon import fill, free_port, get, run_daemon, stop

PAGE_TARGET_MS = 100.0
DOCTOR_TARGET_S = 3.0
REQUESTS = 40
WARMUP = 5
RUNS = 3


YEAR_OF_RUNS = 365 * 48


def fill_job_runs(store_path: Path, runs: int) -> None:
    """Insert ``runs`` past port_sheet_sync runs, every 30 minutes up to now, one in ten failed."""
    db = sqlite3.connect(store_path)
    now = time.time()
    with db:
        db.executemany(
            "INSERT INTO job_runs (job_name, started_at, ended_at, result, duration_seconds, detail, report)"
            " VALUES ('port_sheet_sync', ?, ?, ?, 0.4, '', '')",
            [(now - i * 1800, now - i * 1800 + 0.4, "failure" if i % 10 else "success") for i in range(runs)],
        )
    db.close()


def start_daemon(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `jada-agent run` with port_sheet_sync enabled (and due in an hour), wait until healthy."""
    port = free_port()
    config = directory / "config.toml"
    secrets = directory / "secrets"
    secrets.mkdir(mode=0o700)
    config.write_text(
        f'[orchestrator]\nstate_dir = "{directory / "state"}"\nlisten_address = "127.0.0.1:{port}"\n'
        f'[google]\nsecrets_dir = "{secrets}"\n'
        '[jobs.port_sheet_sync]\ninterval_seconds = 3600\nspreadsheet_id = "bench"\n'
    )
    return run_daemon(config, port)


def median_ms(url: str) -> float:
    """Return the median latency of GET ``url`` in ms."""
    for _ in range(WARMUP):
        get(url)
    timings = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        get(url)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def median_run_s(argv: list[str]) -> float:
    """Return the median wall time of running ``argv`` in seconds."""
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> int:
    """Measure, print the figures, and return 1 if a target is missed."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        fill(directory / "state" / "jada-agent.db", 100_000)
        fill_job_runs(directory / "state" / "jada-agent.db", YEAR_OF_RUNS)
        process, url = start_daemon(directory)
        try:
            page = median_ms(f"{url}/")
            metrics = median_ms(f"{url}/metrics")
            command = [sys.executable, "-m", "orchestrator", "--config", str(directory / "config.toml")]
            doctor = median_run_s([*command, "doctor", "--journal-directory", str(directory)])
            version = median_run_s([*command, "--version"])
        finally:
            stop(process)
    page_ok = page <= PAGE_TARGET_MS
    doctor_ok = doctor <= DOCTOR_TARGET_S
    print(
        f"status page median: {page:.1f} ms with 100,000 tasks, /metrics {metrics:.1f} ms "
        f"(ratio {page / metrics:.1f}); target <= {PAGE_TARGET_MS:.0f} ms: {'ok' if page_ok else 'MISSED'}"
    )
    print(
        f"doctor: {doctor:.2f} s, `jada-agent --version` {version:.2f} s (ratio {doctor / version:.1f}); "
        f"target <= {DOCTOR_TARGET_S:.0f} s: {'ok' if doctor_ok else 'MISSED'}"
    )
    return 0 if page_ok and doctor_ok else 1


if __name__ == "__main__":
    sys.exit(main())
