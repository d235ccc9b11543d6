"""What a port_sheet_sync run costs, and what the scheduler adds to the daemon.

1. A successful run of the job child (`jada-agent job exec port_sheet_sync` against the
   Google simulator): median wall time and peak RSS, beside a bare Python interpreter
   measured in the same run as the reference.
2. Peak RSS of importing what the daemon imports for jobs (orchestrator.scheduler) against
   importing the job module (google-auth, gspread), which only the child loads.

    .venv/bin/python bench/bench_job_run.py

No target is set by the issue; the figures show the Google libraries stay out of the daemon.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulators.google import GoogleSimulator

RUNS = 5
SPREADSHEET_ID = "1BenchSheet"


def wall_time(command: list[str]) -> float:
    """Run ``command`` once and return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def peak_rss(code: str) -> float:
    """Peak RSS in MB of a fresh interpreter running ``code``."""
    # VmHWM, not ru_maxrss: the latter carries the forking parent's peak across exec.
    probe = f"{code}\nprint(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def write_setup(directory: Path, sim: GoogleSimulator) -> Path:
    secrets = directory / "secrets"
    secrets.mkdir(mode=0o700)
    key = secrets / "google.json"
    key.write_text(json.dumps(sim.new_authorized_user()))
    key.chmod(0o600)
    path = directory / "config.toml"
    path.write_text(
        f"""
[orchestrator]
state_dir = "{directory / "state"}"

[google]
secrets_dir = "{secrets}"
token_uri = "{sim.token_uri}"
sheets_endpoint = "{sim.url}"

[jobs.port_sheet_sync]
spreadsheet_id = "{SPREADSHEET_ID}"
"""
    )
    return path


def main() -> int:
    """Print the figures and their ratios to the references."""
    with tempfile.TemporaryDirectory() as tmp, GoogleSimulator() as sim:
        sim.add_spreadsheet(SPREADSHEET_ID)
        cfg = write_setup(Path(tmp), sim)
        job = [sys.executable, "-m", "orchestrator", "--config", str(cfg), "job", "exec", "port_sheet_sync"]
        bare = [sys.executable, "-c", "pass"]
        job_walls = [wall_time(job) for _ in range(RUNS)]
        bare_walls = [wall_time(bare) for _ in range(RUNS)]
    job_wall = statistics.median(job_walls)
    bare_wall = statistics.median(bare_walls)
    bare_rss = peak_rss("pass")
    job_rss = peak_rss("import orchestrator.jobs.port_sheet_sync")
    daemon_rss = peak_rss("import orchestrator.daemon, orchestrator.scheduler")
    print(
        f"job child run (median of {RUNS}): {job_wall * 1000:.0f} ms;"
        f" bare interpreter {bare_wall * 1000:.0f} ms"
    )
    print(f"  ratio job/bare: {job_wall / bare_wall:.1f}x")
    print(
        f"peak RSS: bare {bare_rss:.1f} MB, daemon imports {daemon_rss:.1f} MB,"
        f" job child imports {job_rss:.1f} MB"
    )
    print(f"  daemon/bare: {daemon_rss / bare_rss:.2f}x, job child/bare: {job_rss / bare_rss:.2f}x")
    print(f"  Google libraries kept out of the daemon: {job_rss - daemon_rss:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
