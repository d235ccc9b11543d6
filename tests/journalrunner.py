"""Run a JournalCollector as its own process, scraping in a loop, for kill -9 tests.

    python tests/journalrunner.py --directory DIR --state FILE [--budget 0.001] [--until-caught-up]

Each loop is one scrape: read up to the budget, persist, render. With ``--until-caught-up``
it exits 0 once a scrape finds nothing left to read; otherwise it runs until killed.
A journal that cannot be read ends it with the error on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exporter.journal import JournalCollector, JournalError, parse_read_back
from exporter.rules import load_rule_set


def main() -> int:
    """Scrape the collector in a loop."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=0.001)
    parser.add_argument("--read-back", type=parse_read_back, default="all")
    parser.add_argument("--until-caught-up", action="store_true")
    args = parser.parse_args()
    collector = JournalCollector(
        load_rule_set(None),
        state_file=args.state,
        directory=args.directory,
        read_back=args.read_back,
        budget_seconds=args.budget,
    )
    while True:
        try:
            families = list(collector.collect())
        except JournalError as exc:
            print(f"journalrunner: {exc}", file=sys.stderr)
            return 1
        lag = [s.value for f in families for s in f.samples if s.name == "jada_journal_lag_seconds"]
        if args.until_caught_up and lag == [0.0]:
            return 0


if __name__ == "__main__":
    sys.exit(main())
