"""The journal collector reading a live systemd-journald while processes write to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from demo import journald
from exporter.journal import JournalCollector
from exporter.rules import load_rule_set

needs_journald = pytest.mark.skipif(
    not journald.socket_is_live() and (os.geteuid() != 0 or not journald.JOURNALD.exists()),
    reason="needs a running journald, or root and /lib/systemd/systemd-journald",
)

# A bare process printing the seed's line, and the orchestrator logging a structured event.
WRITE = """
import sys
from systemd import journal
from orchestrator import log

run, batch = sys.argv[1], sys.argv[2]
log.setup()
if batch == "1":
    journal.send("[port-sheet] token error: HTTP Error 400: Bad Request", PRIORITY="3", JADA_RUN=run)
    log.event("[port-sheet] sync failed at 2026-05-13T14:30:00Z: invalid_grant",
              event="sync_failed", component="port-sheet", job_name="port_sheet_sync", run=run)
else:
    log.event("[port-sheet] token error: HTTP 401 invalid_client: The OAuth client was not found.",
              event="token_error", component="port-sheet", status_code="401", run=run)
    journal.send("[port-sheet] sync failed at 2026-05-13T15:00:00Z", PRIORITY="3", JADA_RUN=run)
"""


def write(run: str, batch: str) -> None:
    subprocess.run([sys.executable, "-c", WRITE, run, batch], check=True)


def scrape_until(collector: JournalCollector, entries: int) -> dict[tuple[str, frozenset], float]:
    """Scrape until ``entries`` entries were counted; journald writes them asynchronously."""
    deadline = time.monotonic() + 15
    while True:
        samples = {
            (s.name, frozenset(s.labels.items())): s.value for f in collector.collect() for s in f.samples
        }
        counted = sum(v for (name, _), v in samples.items() if name == "jada_journal_entries_total")
        if counted >= entries or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


@needs_journald
def test_entries_appended_to_a_live_journal_are_counted_by_the_same_collector(tmp_path: Path) -> None:
    run = uuid.uuid4().hex
    with journald.running_journald(tmp_path / "journald") as journal:
        collector = JournalCollector(
            load_rule_set(None),
            state_file=tmp_path / "state.json",
            matches=[f"JADA_RUN={run}"],
            directory=journal.directory,
            read_back="all",
        )
        write(run, "1")
        first = scrape_until(collector, 2)
        write(run, "2")
        second = scrape_until(collector, 4)
        collector.close()

    def token(samples: dict, status: str) -> float | None:
        labels = frozenset({"component": "port-sheet", "status_code": status}.items())
        return samples.get(("jada_journal_token_errors_total", labels))

    sync = ("jada_journal_sync_failures_total", frozenset({"component": "port-sheet"}.items()))
    assert (token(first, "400"), first[sync]) == (1, 1)
    assert (token(second, "400"), token(second, "401"), second[sync]) == (1, 1, 2)
    entries = {labels: v for (name, labels), v in second.items() if name == "jada_journal_entries_total"}
    assert entries == {
        frozenset({"unit": "none", "priority": "3"}.items()): 2,
        frozenset({"unit": "none", "priority": "6"}.items()): 2,
    }
