"""Cold read of 200,000 journal entries with the built-in rules, against two references.

    .venv/bin/python bench/bench_journal_read.py [--entries 200000] [--repeat 3]

The entries look like what journald stores for jada-agent.service (the trusted fields it
adds, structured events and plain lines mixed) and are written into real journal files by
systemd-journal-remote, in two mixes: event-heavy (30% events, far more than a real
journal) and typical (2%). For each, measured in the same run, best of ``--repeat``:

- the journal collector's cold read (a fresh state, one collect with an unlimited budget);
- ``journalctl --directory DIR -o cat > /dev/null``: libsystemd reading MESSAGE in C
  (target: the collector reaches at least 0.5 of its entries per second);
- ``mtail --one_shot`` with equivalent rules over the same messages as a plain log file,
  its start-up (the same run over an empty file) subtracted (target: at least 1.0).

Both count the same events: the run stops with an error unless mtail's counters equal the
collector's (mtail's exit-code label mapped to its reason, as the built-in rule does).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from journalfixtures import entry, event, token_error_event, write_journal
from prometheus_client.metrics_core import Metric

from exporter.journal import JournalCollector
from exporter.rules import load_rule_set

# What journald adds to every line of a service. It stores them after the fields the
# service sent, and a unique MESSAGE last, so a read of MESSAGE scans the whole entry.
TRUSTED = {
    "_TRANSPORT": "journal",
    "_UID": "998",
    "_GID": "998",
    "_PID": "1234",
    "_COMM": "python3",
    "_EXE": "/usr/bin/python3.11",
    "_CMDLINE": "/opt/jada-agent/.venv/bin/python -m orchestrator run",
    "_CAP_EFFECTIVE": "0",
    "_SYSTEMD_CGROUP": "/system.slice/jada-agent.service",
    "_SYSTEMD_UNIT": "jada-agent.service",
    "_SYSTEMD_SLICE": "system.slice",
    "_SYSTEMD_INVOCATION_ID": "5f0c7b1e9d7f4a0f8e9c2d3b4a5f6e7d",
    "_MACHINE_ID": "0123456789abcdef0123456789abcdef",
    "_HOSTNAME": "ip-172-26-0-10",
}
# What journal.send adds from its caller, orchestrator.log's handler.
SENT = {"CODE_FILE": "/opt/jada-agent/orchestrator/log.py", "CODE_LINE": "60", "CODE_FUNC": "emit"}


def stamp(n: int) -> str:
    """Return a distinct UTC time for entry ``n``, as the orchestrator writes times."""
    return f"2026-05-13T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"


# The events (entry number n): the seed's plain lines and the orchestrator's structured
# events for the same things; and the ordinary lines that make up the rest of a journal.
EVENTS: list[Callable[[int], dict]] = [
    lambda n: entry("[port-sheet] token error: HTTP Error 400: Bad Request", priority="3"),
    lambda n: token_error_event(
        f"[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked. ({n})"
    ),
    lambda n: entry(f"[port-sheet] sync failed at {stamp(n)}", priority="3"),
    lambda n: event(f"[port-sheet] sync failed at {stamp(n)}: token", "sync_failed", component="port-sheet"),
    lambda n: entry(f"[session] task {n} session {n} exited: max_turns after 30 turns (exit code 1)"),
    lambda n: event(
        f"[session] task {n} session {n} exited: completed after 9 turns (exit code 0)",
        "session_exit",
        task_id=str(n),
        session_id=str(n),
        exit_reason="completed",
        exit_code="0",
        turns="9",
    ),
]
PLAIN: list[Callable[[int], dict]] = [
    lambda n: entry(f"[scheduler] tick {n}: {n % 7} tasks queued, 0 running"),
    lambda n: entry(f"GET /metrics 200 0.{n % 1000:03d}s"),
    lambda n: entry(f"[session] task 7 session 12 turn {n % 30}: tool bash"),
]
# Event-heavy: 6 events in every 20 entries, far more than a real journal holds (the
# seed's sync fails twice an hour). Typical: 6 in every 300. Each journal file starts
# with an ordinary line, as real ones do, so PRIORITY=6 is among its first data objects.
MIXES = {
    "event-heavy (30% events)": (PLAIN * 5)[:14] + EVENTS,
    "typical (2% events)": (PLAIN * 98)[:294] + EVENTS,
}


def bench_entry(n: int, cycle: list[Callable[[int], dict]]) -> dict:
    """Return entry ``n`` of ``cycle`` with its fields in the order journald stores them."""
    sent = {k: v for k, v in cycle[n % len(cycle)](n).items() if k != "_SYSTEMD_UNIT"}
    message = sent.pop("MESSAGE")
    return {**sent, **SENT, **TRUSTED, "MESSAGE": message}


MTAIL_PROGRAM = r"""counter jada_journal_entries_total
counter jada_journal_token_errors_total by component, status_code
counter jada_journal_sync_failures_total by component
counter jada_journal_session_exits_total by reason

/$/ {
  jada_journal_entries_total++
}
/^\[(?P<component>[\w.-]+)\] token error:(?: HTTP(?: Error)? (?P<status_code>\d{3})\b)?/ {
  jada_journal_token_errors_total[$component][$status_code]++
}
/^\[(?P<component>[\w.-]+)\] sync failed\b/ {
  jada_journal_sync_failures_total[$component]++
}
/^\[session\] task \d+ session \d+ exited: (?P<reason>\w+)/ {
  jada_journal_session_exits_total[$reason]++
}
/^\[session\] (?:task \d+ )?session \d+ exit(?:ed with)? code (?P<code>\d+)\b/ {
  jada_journal_session_exits_total[$code]++
}
"""


def best_seconds(repeat: int, run: Callable[[], None]) -> float:
    """Return the shortest of ``repeat`` timed runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


Counts = dict[tuple[str, tuple[str, ...]], float]
_SAMPLE = re.compile(r"^(jada_\w+)\{([^}]*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_EXIT_CODES = {"0": "completed", "1": "max_turns", "2": "error"}


def counts_of(name: str, labels: dict[str, str], value: float, into: Counts) -> None:
    """Add one sample to ``into`` by event and the labels both programs give it."""
    if name == "jada_journal_entries_total":
        key: tuple[str, ...] = ()
    elif name == "jada_journal_token_errors_total":
        key = (labels["component"], labels["status_code"])
    elif name == "jada_journal_sync_failures_total":
        key = (labels["component"],)
    elif name == "jada_journal_session_exits_total":
        key = (_EXIT_CODES.get(labels["reason"], labels["reason"]),)
    else:
        return
    into[(name, key)] = into.get((name, key), 0.0) + value


def collector_counts(families: list[Metric]) -> Counts:
    """Return the collector's event counts, entries summed over unit and priority."""
    counts: Counts = {}
    for family in families:
        for sample in family.samples:
            if sample.value:
                counts_of(sample.name, sample.labels, sample.value, counts)
    return counts


def mtail_counts(exposition: str) -> Counts:
    """Return mtail's event counts from its Prometheus text output."""
    counts: Counts = {}
    for line in exposition.splitlines():
        found = _SAMPLE.match(line)
        if found and float(found.group(3)):
            labels = dict(_LABEL.findall(found.group(2)))
            counts_of(found.group(1), labels, float(found.group(3)), counts)
    return counts


def collector_read(journal_dir: Path, work: Path, counted: list[Counts]) -> Callable[[], None]:
    """Return a cold read by a fresh collector with the built-in rules; it adds its counts to ``counted``."""

    def run() -> None:
        state_dir = Path(tempfile.mkdtemp(dir=work))
        collector = JournalCollector(
            load_rule_set(None),
            state_file=state_dir / "state.json",
            directory=journal_dir,
            read_back="all",
            budget_seconds=3600,
        )
        families = list(collector.collect())
        collector.close()
        lag = [s.value for f in families for s in f.samples if s.name == "jada_journal_lag_seconds"]
        assert lag == [0.0], "the cold read did not reach the end"
        counted.append(collector_counts(families))

    return run


def command(argv: list[str], stdout: Path | None = None) -> Callable[[], None]:
    """Return a run of ``argv`` with its output discarded or written to ``stdout``."""

    def run() -> None:
        with open(stdout or "/dev/null", "wb") as out:
            subprocess.run(argv, stdout=out, stderr=subprocess.DEVNULL, check=True)

    return run


def measure(entries: int, repeat: int, cycle: list[Callable[[int], dict]], work: Path) -> None:
    """Build one journal, time the three readers on it, print the figures and the ratios."""
    journal_dir = work / "journal"
    shutil.rmtree(journal_dir, ignore_errors=True)
    write_journal(journal_dir, (bench_entry(n, cycle) for n in range(entries)))
    log_file = work / "messages.log"
    command(["journalctl", "--directory", str(journal_dir), "-o", "cat"], log_file)()
    empty_log = work / "empty.log"
    empty_log.touch()
    progs = work / "progs"
    progs.mkdir(exist_ok=True)
    (progs / "jada.mtail").write_text(MTAIL_PROGRAM)

    counted: list[Counts] = []
    ours = best_seconds(repeat, collector_read(journal_dir, work, counted))
    journalctl = best_seconds(repeat, command(["journalctl", "--directory", str(journal_dir), "-o", "cat"]))
    mtail = ["mtail", "--one_shot", "--one_shot_format=prometheus", "--progs", str(progs), "--logs"]
    mtail_full = best_seconds(repeat, command([*mtail, str(log_file)]))
    mtail_startup = best_seconds(repeat, command([*mtail, str(empty_log)]))
    mtail_read = max(mtail_full - mtail_startup, 1e-9)
    exposition = subprocess.run([*mtail, str(log_file)], capture_output=True, text=True, check=True).stdout
    if mtail_counts(exposition) != counted[0]:
        raise SystemExit(
            f"mtail counted {mtail_counts(exposition)}, the collector {counted[0]}: not equivalent"
        )

    size = sum(path.stat().st_size for path in journal_dir.iterdir())
    events = sum(v for (name, _), v in counted[0].items() if name != "jada_journal_entries_total")
    print(f"  {entries} entries, {size / 2**20:.0f} MiB of journal files, {events:.0f} events")
    print("  mtail's counts equal the collector's")
    print(f"  jada-exporter journal collector: {entries / ours:10,.0f} entries/s ({ours:.3f} s)")
    print(f"  journalctl -o cat > /dev/null:   {entries / journalctl:10,.0f} entries/s ({journalctl:.3f} s)")
    print(
        f"  mtail --one_shot:                {entries / mtail_read:10,.0f} lines/s "
        f"({mtail_full:.3f} s, start-up {mtail_startup:.3f} s subtracted)"
    )
    for name, ratio, target in (("journalctl", journalctl / ours, 0.5), ("mtail", mtail_read / ours, 1.0)):
        verdict = "PASS" if ratio >= target else "FAIL"
        print(f"  ratio to {name + ':':11} {ratio:.2f} (target >= {target}) {verdict}")


def main() -> int:
    """Measure each mix of entries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    try:
        for name, cycle in MIXES.items():
            print(f"{name}:")
            measure(args.entries, args.repeat, cycle, work)
        return 0
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
