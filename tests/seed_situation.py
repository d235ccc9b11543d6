"""The seed's situation in a real store: three sessions, a needs-you question, failing syncs.

Sessions and the question are written through the store's own API at the seed's times of
day; the port_sheet_sync runs are real job children started by the real scheduler against
the Google simulator, whose refresh token expires after the first run (HTTP 400
invalid_grant), so the store holds what the daemon would have recorded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from freezegun import freeze_time
from google_setup import SPREADSHEET_ID, write_config, write_credential
from prometheus_client import CollectorRegistry

from orchestrator import config
from orchestrator.scheduler import Scheduler
from orchestrator.store import Store
from simulators.google import GoogleSimulator

EXPIRED = "1//0expired-refresh-token-from-may"
QUESTION = "Which e-signature provider should the crew pages use: DocuSign or Dropbox Sign?"
PAGE_TASK = "Refactor the page generator"
SIGNATURE_TASK = "Unblock e-signature and the crew page generator"


def add_seed_sessions(store: Store, day_start: float) -> None:
    """Record the seed's three sessions (00:00, 00:02, 00:05 UTC) and the question of session 2."""
    page = store.add_task(PAGE_TASK, "Split the page generator into components.")
    signature = store.add_task(SIGNATURE_TASK, "Fix the e-signature and crew page blockers.")
    first = store.start_session(page, 5, now=day_start)
    assert first is not None
    store.finish_session(first, "max_turns", 1, 30, now=day_start + 110)
    store.release_task(page, "queued", "Session 1 ended with max_turns after 30 turns")
    second = store.start_session(signature, 5, now=day_start + 120)
    assert second is not None
    with freeze_time(datetime.fromtimestamp(day_start + 150, UTC)):
        store.request_human(signature, QUESTION)
    store.finish_session(second, "completed", 0, 12, now=day_start + 280)
    store.release_task(signature, "done")
    third = store.start_session(page, 5, now=day_start + 300)
    assert third is not None
    store.finish_session(third, "max_turns", 1, 30, now=day_start + 420)
    store.release_task(page, "queued", "Session 3 ended with max_turns after 30 turns")


def run_syncs(cfg: config.Config, store: Store, sim: GoogleSimulator, times: Sequence[float]) -> None:
    """Run port_sheet_sync at each of ``times``: the first succeeds, then the token expires."""
    scheduler = Scheduler(cfg, store, CollectorRegistry(), now=times[0])
    for index, at in enumerate(times):
        if index == 1:
            sim.revoke(EXPIRED)
        assert scheduler.tick(at) == []
        assert scheduler.running == ["port_sheet_sync"]
        scheduler.wait(timeout=60)
        [outcome] = scheduler.tick(at + 2.0)
        assert outcome.result == ("success" if index == 0 else "failure"), outcome


def seed_situation(
    tmp_path: Path, sim: GoogleSimulator, day_start: float, sync_times: Sequence[float]
) -> tuple[config.Config, Path]:
    """Build the seed's situation under ``tmp_path``; return the config and its path."""
    sim.add_spreadsheet(SPREADSHEET_ID)
    info = sim.new_authorized_user(refresh_token=EXPIRED)
    # Written before the first sync, as the seed's credential was months before it expired.
    written = sync_times[0] - 3600
    os.utime(write_credential(tmp_path, info), (written, written))
    cfg_path = write_config(tmp_path, sim)
    cfg = config.load(cfg_path, environ={})
    with Store(cfg.store_path) as store:
        add_seed_sessions(store, day_start)
        run_syncs(cfg, store, sim, sync_times)
    return cfg, cfg_path
