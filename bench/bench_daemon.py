"""The orchestrator daemon's footprint: idle RSS, and /metrics latency as the store grows.

1. Idle RSS: `jada-agent run` as a real process on an empty queue, measured once it idles,
   beside a bare Python interpreter measured in the same run as the reference.
2. /metrics over HTTP from the daemon with 1,000 and with 100,000 tasks in the store: the
   median of repeated scrapes for each, and their ratio.

    .venv/bin/python bench/bench_daemon.py

Targets (issue 2): idle RSS <= 60 MB (the seed's daemon used 144 MB); /metrics median with
100,000 tasks <= 20 ms.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from demo.processes import free_port
from orchestrator.store import STATES, Store

RSS_TARGET_MB = 60.0
METRICS_TARGET_MS = 20.0
SCRAPES = 60
WARMUP_SCRAPES = 5


def write_config(directory: Path, port: int) -> Path:
    """Write a daemon config whose state lives in ``directory``."""
    path = directory / "config.toml"
    path.write_text(
        f'[orchestrator]\nstate_dir = "{directory / "state"}"\nlisten_address = "127.0.0.1:{port}"\n'
    )
    return path


def fill(store_path: Path, tasks: int) -> None:
    """Insert ``tasks`` tasks spread over the states, as months of use would leave them."""
    Store(store_path).close()
    now = time.time()
    rng = random.Random(7)
    weights = {"queued": 5, "running": 0, "needs_you": 1, "done": 80, "failed": 4, "cancelled": 10}
    states = rng.choices(STATES, weights=[weights[s] for s in STATES], k=tasks)
    rows = [
        (
            f"task {i}",
            f"do thing {i}",
            rng.randint(0, 5),
            state,
            now - i,
            now - i,
            now - i if state == "needs_you" else None,
        )
        for i, state in enumerate(states)
    ]
    db = sqlite3.connect(store_path)
    with db:
        db.executemany(
            "INSERT INTO tasks (title, prompt, priority, state, created_at, updated_at, needs_you_since)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.close()


def get(url: str) -> bytes:
    """GET ``url``; raise on anything but 200."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll /healthz until the daemon answers ok, with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the daemon exited with {process.returncode}")
        try:
            if get(f"{url}/healthz").startswith(b"ok"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the daemon did not become healthy within {timeout}s")


def rss_mb(pid: int) -> float:
    """Return a process's resident set size in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def start_daemon(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `jada-agent run` on a free port and wait until it is healthy."""
    port = free_port()
    return run_daemon(write_config(directory, port), port)


def run_daemon(config: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start `jada-agent run` with ``config``, which listens on ``port``, and wait until it is healthy."""
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    return process, url


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the daemon with SIGTERM, as systemd would."""
    process.terminate()
    process.wait(30)


def idle_rss() -> tuple[float, float]:
    """Return (idle daemon RSS, bare interpreter RSS) in MB."""
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_daemon(Path(tmp))
        try:
            for _ in range(WARMUP_SCRAPES):
                get(f"{url}/metrics")
                get(f"{url}/")
            daemon = rss_mb(process.pid)
        finally:
            stop(process)
    bare = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        time.sleep(0.5)
        reference = rss_mb(bare.pid)
    finally:
        bare.communicate(b"")
    return daemon, reference


def metrics_median_ms(tasks: int) -> float:
    """Return the median /metrics latency in ms with ``tasks`` tasks in the store."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        fill(directory / "state" / "jada-agent.db", tasks)
        process, url = start_daemon(directory)
        try:
            for _ in range(WARMUP_SCRAPES):
                get(f"{url}/metrics")
            timings = []
            for _ in range(SCRAPES):
                started = time.perf_counter()
                get(f"{url}/metrics")
                timings.append((time.perf_counter() - started) * 1000)
        finally:
            stop(process)
    return statistics.median(timings)


def main() -> int:
    """Run both measurements, print the figures, and return 1 if a target is missed."""
    daemon, reference = idle_rss()
    print(
        f"idle daemon RSS: {daemon:.1f} MB (bare python {reference:.1f} MB, ratio {daemon / reference:.2f}); "
        f"target <= {RSS_TARGET_MB:.0f} MB: {'ok' if daemon <= RSS_TARGET_MB else 'MISSED'}"
    )
    small = metrics_median_ms(1_000)
    large = metrics_median_ms(100_000)
    print(
        f"/metrics median: {large:.2f} ms with 100,000 tasks, {small:.2f} ms with 1,000 tasks "
        f"(ratio {large / small:.2f}); target <= {METRICS_TARGET_MS:.0f} ms: "
        f"{'ok' if large <= METRICS_TARGET_MS else 'MISSED'}"
    )
    return 0 if daemon <= RSS_TARGET_MB and large <= METRICS_TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
