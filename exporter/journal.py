"""The journal collector: journald entries counted by rules, exactly once across restarts.

At each scrape it reads the entries added since the last one (at most
``--journal.scrape-budget-seconds`` of reading, so a large backlog never stalls a scrape),
counts them with the rules, persists the cursor and the counters together, then exposes::

    # HELP jada_journal_token_errors_total OAuth token refresh errors seen in the journal.
    # TYPE jada_journal_token_errors_total counter
    jada_journal_token_errors_total{component="port-sheet",status_code="400"} 3.0
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from systemd import journal

from exporter import state
from exporter.rules import (
    CURSOR_RESETS,
    LABEL_OVERFLOW,
    MALFORMED_ENTRIES,
    MESSAGE,
    STATE_FILE_RESETS,
    Fetch,
    Rule,
    RuleSet,
    bound_labels,
    load_rule_set,
)

log = logging.getLogger(__name__)

DEFAULT_MATCH = "_SYSTEMD_UNIT=jada-agent.service"
DEFAULT_STATE_FILE = Path("/var/lib/jada-exporter/journal-state.json")
DEFAULT_BUDGET_SECONDS = 0.5
# Fields longer than this are truncated by libsystemd before they reach Python; MESSAGE
# rules only need the start of a line, and a 1 MB line must not cost 1 MB per read.
DATA_THRESHOLD = 64 * 1024
# How many entries are read between two looks at the clock (and two tallies of hits).
_CLOCK_STRIDE = 256
_SYSTEM_JOURNAL_DIRS = (Path("/var/log/journal"), Path("/run/log/journal"))

_MALFORMED_PROBLEMS = ("not_utf8", "no_message", "oversized")
_STATE_PROBLEMS = ("empty", "nul_bytes", "corrupt")
_MATCH = re.compile(r"^[A-Z0-9_]+=.*$", re.DOTALL)
_DURATION = re.compile(r"^(\d+)([smhd])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

ReadBack = str | float
# The raw values of the tally fields: one value, or a tuple of them when there are several.
Tallied = bytes | tuple[bytes | None, ...] | None


class JournalError(Exception):
    """The journal cannot be read; the message names the path and the fix."""


def parse_match(text: str) -> str:
    """Check a journalctl-style match, ``FIELD=value`` or ``+`` (OR between groups)."""
    if text != "+" and not _MATCH.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a journal match; write FIELD=value with an upper-case field name, "
            "e.g. _SYSTEMD_UNIT=jada-agent.service, or + between alternatives"
        )
    return text


def parse_read_back(text: str) -> ReadBack:
    """Parse the first-start window: ``boot``, ``all`` or a duration such as ``6h`` (as seconds)."""
    if text in ("boot", "all"):
        return text
    found = _DURATION.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a read-back window; use boot, all, or a duration such as 30m, 6h or 2d"
        )
    return float(int(found.group(1)) * _DURATION_UNITS[found.group(2)])


def _positive_seconds(text: str) -> float:
    """Parse a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def pinned_fields(matches: Sequence[str]) -> dict[str, str]:
    """Return the fields whose value every matching entry must have (one value, no ``+``)."""
    if "+" in matches:
        return {}
    values: dict[str, set[str]] = {}
    for match in matches:
        name, _, value = match.partition("=")
        values.setdefault(name, set()).add(value)
    return {name: next(iter(found)) for name, found in values.items() if len(found) == 1}


def _fetcher(reader: journal._Reader) -> Fetch:
    """Return a reader of the current entry's fields that only a matching rule needs."""
    get = reader._get

    def fetch(name: str) -> str | None:
        try:
            return get(name).decode(errors="replace")
        except KeyError:
            return None

    return fetch


def _may_read(path: Path, mode: int) -> bool:
    """Tell whether this process, with its effective ids, may access ``path`` in ``mode``."""
    try:
        return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)
    except OSError:
        return False


def unreadable_journal_files(directories: Sequence[Path]) -> list[Path]:
    """Return the journal files and directories under ``directories`` this process may not read.

    libsystemd skips them without a word, which would look like a quiet journal.
    """
    unreadable: list[Path] = []
    for directory in directories:
        if not os.path.lexists(directory):
            continue
        for root, _, files in os.walk(directory, onerror=lambda exc: unreadable.append(Path(exc.filename))):
            for name in sorted(files):
                path = Path(root) / name
                if name.endswith((".journal", ".journal~")) and not _may_read(path, os.R_OK):
                    unreadable.append(path)
    return unreadable


class _SideIndex:
    """The entries whose ``field`` has a value some rule matches on, from the journal's index.

    A second reader with the same matches ANDed with ``FIELD=value`` for each wanted value
    walks only those entries, in the same order as the main reader. Its head is the next
    such entry, so the main loop reads the field only for an entry at the head's time,
    instead of scanning every entry for a field most of them do not have.
    """

    def __init__(self, reader: journal._Reader, field: str, values: frozenset[str]) -> None:
        self.reader = reader
        self.field = field
        self.values = frozenset(value.encode() for value in values)
        self.realtime: int | None = None

    def sync(self, cursor: str) -> None:
        """Move the head to the first wanted entry at or after the main reader's entry ``cursor``.

        That entry was just read, so it exists: seeking to it is exact even when the file
        holding the previous scrape's last entry has since been vacuumed.
        """
        self.reader.process()
        self.reader.seek_cursor(cursor)
        self.advance()

    def advance(self) -> None:
        """Move the head to the next wanted entry."""
        self.realtime = self.reader._get_realtime() if self.reader._next() else None

    def take(self, main: journal._Reader) -> bytes | None:
        """Return the main reader entry's field, at the head's time; pass the head if it is that entry.

        The head is the first wanted entry from the main reader's position on, so an entry
        with a wanted value is the head. Any other entry is compared by cursor: an entry can
        repeat a field, and the index may list it for a value that is not the first.
        """
        try:
            raw = main._get(self.field)
        except KeyError:
            raw = None
        if raw in self.values or main.test_cursor(self.reader._get_cursor()):
            self.advance()
        return raw


class JournalCollector:
    """Count journal entries with rules; persist the cursor and the counts together."""

    name = "journal"

    def __init__(
        self,
        rules: RuleSet,
        state_file: Path,
        matches: Sequence[str] = (DEFAULT_MATCH,),
        directory: Path | None = None,
        read_back: ReadBack = "boot",
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
        boot_time: Callable[[], float] = psutil.boot_time,
    ) -> None:
        self._rules = rules
        self._state_file = Path(state_file)
        self._matches = tuple(matches)
        self._directory = directory
        self._read_back = read_back
        self._budget = budget_seconds
        self._boot_time = boot_time
        pinned = pinned_fields(self._matches)
        needed = set(rules.eager_fields) | set(rules.indexed_fields)
        self._pinned = {name: value for name, value in pinned.items() if name in needed}
        # MESSAGE is read for every entry, for the rules and to count missing or broken ones.
        self._fetch = tuple(name for name in rules.eager_fields if name not in pinned and name != MESSAGE)
        self._indexed = {name: values for name, values in rules.indexed_fields.items() if name not in pinned}
        # Most entries are plain lines: no structured event (the side indexes say so) and
        # nothing any regex wants (the prefilter says so). Their hits depend on a few fields
        # only, so they are tallied by those fields' raw bytes and evaluated once per tally.
        plain = rules.plain_fields
        self._tally_fields: tuple[str, ...] | None = None
        if plain is not None and MESSAGE not in plain and rules.guarded_fields <= set(self._indexed):
            self._tally_fields = tuple(name for name in plain if name not in self._pinned)
        self._untallied_fetch = tuple(name for name in self._fetch if name not in (self._tally_fields or ()))
        # The tally fields the rules left after the tally need, by position in the tally.
        self._tallied_needed = tuple(
            (index, name)
            for index, name in enumerate(self._tally_fields or ())
            if name in rules.undecided_fields
        )
        self._label_names = {counter.metric: counter.label_names for counter in rules.counters}
        self._label_names.update(
            {
                CURSOR_RESETS: (),
                LABEL_OVERFLOW: ("rule",),
                MALFORMED_ENTRIES: ("problem",),
                STATE_FILE_RESETS: ("problem",),
            }
        )
        self._reader: journal._Reader | None = None
        self._sides: list[_SideIndex] = []
        self._state: state.JournalState | None = None
        self._seen: dict[str, list[set[str]]] = {}
        # Raw label values already accepted by a rule, so the common path skips bounding.
        self._accepted: dict[tuple[Rule, tuple[str, ...]], tuple[str, ...]] = {}
        self._dirty = False
        self._lag_seconds: float | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        """Read new entries up to the budget, persist, and yield the metric families."""
        # Scrapes may arrive on several server threads; one reader and one state file
        # must see them one at a time.
        with self._lock:
            families = list(self._collect_locked())
        yield from families

    def _collect_locked(self) -> Iterator[Metric]:
        if self._state is None:
            self._state = self._load_state()
        if self._reader is None:
            self._reader = self._open()
        try:
            self._read(self._reader)
        except OSError as exc:
            self._close()
            raise JournalError(f"reading the journal failed: {exc}") from exc
        if self._dirty:
            state.save(self._state_file, self._state)
            self._dirty = False
        yield from self._families(self._state)

    def close(self) -> None:
        """Close the journal reader; the next collect opens it again."""
        self._close()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        for side in self._sides:
            side.reader.close()
        self._sides = []

    def _load_state(self) -> state.JournalState:
        """Load the persisted state, replacing a damaged file with a fresh start."""
        try:
            loaded = state.load(self._state_file)
        except state.StateFileError as exc:
            log.warning(
                "journal state file %s is unusable (%s); starting afresh and replacing it",
                self._state_file,
                exc,
            )
            loaded = state.JournalState()
            loaded.counters[STATE_FILE_RESETS] = {(exc.problem,): 1}
            self._dirty = True
        current = loaded or state.JournalState()
        for metric in list(current.counters):
            names = self._label_names.get(metric)
            if names is None or any(len(labels) != len(names) for labels in current.counters[metric]):
                log.info(
                    "journal state file %s: dropping counts of %s, no rule makes it now",
                    self._state_file,
                    metric,
                )
                del current.counters[metric]
        self._preset(current.counters)
        for metric, names in self._label_names.items():
            self._seen[metric] = [
                {labels[i] for labels in current.counters.get(metric, {})} for i in range(len(names))
            ]
        return current

    def _preset(self, counters: state.Counts) -> None:
        """Create the known label children at 0 so error series exist before the first error."""
        for counter in self._rules.counters:
            children = counters.setdefault(counter.metric, {})
            for labels in counter.preset_children():
                children.setdefault(labels, 0)
        overflow = counters.setdefault(LABEL_OVERFLOW, {})
        for rule in self._rules.rules:
            if rule.labels:
                overflow.setdefault((rule.name,), 0)
        counters.setdefault(CURSOR_RESETS, {}).setdefault((), 0)
        for metric, problems in (
            (MALFORMED_ENTRIES, _MALFORMED_PROBLEMS),
            (STATE_FILE_RESETS, _STATE_PROBLEMS),
        ):
            children = counters.setdefault(metric, {})
            for problem in problems:
                children.setdefault((problem,), 0)

    def _open(self) -> journal._Reader:
        """Open the journal with the matches and position it where counting stopped."""
        if self._directory is not None:
            directory = Path(self._directory)
            try:
                is_directory = directory.is_dir()
            except PermissionError:
                is_directory = True
            if not is_directory:
                raise JournalError(f"journal directory {directory} does not exist; check --journal.directory")
            if not _may_read(directory, os.R_OK | os.X_OK):
                raise JournalError(
                    f"journal directory {directory} is not readable by this user; "
                    "give it read access (e.g. the systemd-journal group)"
                )
            unreadable = unreadable_journal_files([directory])
        else:
            unreadable = unreadable_journal_files(list(_SYSTEM_JOURNAL_DIRS))
        if unreadable:
            raise JournalError(
                f"{unreadable[0]} is not readable by this user ({len(unreadable)} such journal files "
                "or directories); add the exporter's user to the systemd-journal group"
            )
        reader = self._new_reader(())
        self._position(reader)
        self._fetch_later = _fetcher(reader)
        self._sides = [
            _SideIndex(self._new_reader([f"{name}={value}" for value in sorted(values)]), name, values)
            for name, values in self._indexed.items()
        ]
        return reader

    def _new_reader(self, wanted: Sequence[str]) -> journal._Reader:
        """Open a reader with the configured matches, ANDed with ``wanted`` (ORed among themselves)."""
        try:
            if self._directory is not None:
                reader = journal._Reader(path=str(self._directory), flags=0)
            else:
                reader = journal._Reader()
        except (OSError, ValueError) as exc:
            raise JournalError(f"opening the journal {self._directory or '(system)'} failed: {exc}") from exc
        reader.data_threshold = DATA_THRESHOLD
        for match in self._matches:
            if match == "+":
                reader.add_disjunction()
            else:
                reader.add_match(match)
        if wanted:
            reader.add_conjunction()
            for match in wanted:
                reader.add_match(match)
        # Asking for the descriptor sets up inotify, which process() needs to notice
        # appended, rotated and vacuumed files.
        reader.fileno()
        return reader

    def _position(self, reader: journal._Reader) -> None:
        """Seek to just after the persisted cursor, or to the read-back window on a first start."""
        current = self._state
        assert current is not None
        if current.cursor is None:
            if self._read_back == "all":
                reader.seek_head()
            else:
                start = (
                    self._boot_time() if self._read_back == "boot" else time.time() - float(self._read_back)
                )
                reader.seek_realtime(int(start * 1_000_000))
            return
        try:
            reader.seek_cursor(current.cursor)
            found = reader._next() and reader.test_cursor(current.cursor)
        except (OSError, ValueError):
            found = False
        if found:
            return
        log.warning(
            "journal cursor from %s no longer exists (journal vacuumed or rotated away); "
            "resuming at the oldest entry after it",
            self._state_file,
        )
        current.counters[CURSOR_RESETS][()] += 1
        self._dirty = True
        if current.realtime_usec is None:
            reader.seek_head()
        else:
            reader.seek_realtime(current.realtime_usec + 1)

    def _read(self, reader: journal._Reader) -> None:
        """Count entries until the journal's end or the budget, whichever comes first."""
        current = self._state
        assert current is not None
        reader.process()
        sides = self._sides
        following, get, realtime = reader._next, reader._get, reader._get_realtime
        search = self._rules.search
        tally_fields = self._tally_fields
        single = tally_fields[0] if tally_fields is not None and len(tally_fields) == 1 else None
        # A line some regex wants, with no structured field, needs only the regex rules' chain
        # when no other field is read for the rules left after the tally.
        line_hits = (
            self._rules.line_hits if self._rules.lines_by_chain and not self._untallied_fetch else None
        )

        def field(name: str) -> bytes | None:
            try:
                return get(name)
            except KeyError:
                return None

        deadline = time.monotonic() + self._budget
        read = 0
        caught_up = False
        # The sides are placed once the first entry of this scrape is known.
        head: int | None = None
        if sides and following():
            cursor = reader._get_cursor()
            for side in sides:
                side.sync(cursor)
            head = self._head()
            reader.seek_cursor(cursor)
        # Hits are tallied a stride at a time: one C-level count of repeated keys is much
        # cheaper than bounding and adding each hit on its own.
        hits: list[tuple[Rule, tuple[str, ...]]] = []
        remember = hits.extend
        plain: dict[Tallied, int] = {}
        decided: dict[Tallied, int] = {}
        while not caught_up and (read == 0 or time.monotonic() < deadline):
            for _ in range(_CLOCK_STRIDE):
                if not following():
                    caught_up = True
                    break
                read += 1
                if tally_fields is None:
                    remember(self._evaluate(reader))
                    if sides:
                        head = self._head()
                    continue
                try:
                    raw = get(MESSAGE)
                    message = raw.decode()
                except (KeyError, UnicodeDecodeError):
                    message = None
                if message is None or len(raw) >= DATA_THRESHOLD:
                    remember(self._evaluate(reader))
                    if sides:
                        head = self._head()
                    continue
                found = search(message) if search is not None else None
                if single:
                    try:
                        key = get(single)
                    except KeyError:
                        key = None
                else:
                    key = tuple(map(field, tally_fields))
                at_head = head is not None and realtime() == head
                if found is None and not at_head:
                    # The common case: a plain line, tallied by its raw field values.
                    plain[key] = plain.get(key, 0) + 1
                    continue
                # The counters decided by those values are tallied the same way.
                decided[key] = decided.get(key, 0) + 1
                if line_hits is not None and not at_head:
                    remember(line_hits(found))  # type: ignore[arg-type]
                    continue
                tallied = (key,) if single else key
                remember(self._evaluate_tallied(reader, message, found, tallied, head if at_head else None))  # type: ignore[arg-type]
                head = sides[0].realtime if len(sides) == 1 else self._head()
            self._count(hits, plain, decided)
            hits.clear()
            plain.clear()
            decided.clear()
        if read:
            current.cursor = reader._get_cursor()
            current.realtime_usec = reader._get_realtime()
            self._dirty = True
        self._lag_seconds = 0.0 if caught_up else self._measure_lag(reader)

    def _head(self) -> int | None:
        """Return the realtime of the nearest side head, None when every side is done."""
        head = None
        for side in self._sides:
            if side.realtime is not None and (head is None or side.realtime < head):
                head = side.realtime
        return head

    def _evaluate(self, reader: journal._Reader) -> list[tuple[Rule, tuple[str, ...]]]:
        """Read the current entry's fields, count what is malformed in them, and evaluate it."""
        malformed = self._state.counters[MALFORMED_ENTRIES]  # type: ignore[union-attr]
        entry = self._pinned.copy()
        try:
            raw = reader._get(MESSAGE)
        except KeyError:
            malformed[("no_message",)] += 1
        else:
            if len(raw) >= DATA_THRESHOLD:
                malformed[("oversized",)] += 1
            try:
                entry[MESSAGE] = raw.decode()
            except UnicodeDecodeError:
                malformed[("not_utf8",)] += 1
                entry[MESSAGE] = raw.decode(errors="replace")
        self._complete(reader, entry, self._fetch, reader._get_realtime() if self._sides else None)
        return self._rules.evaluate(entry, self._fetch_later)

    def _evaluate_tallied(
        self,
        reader: journal._Reader,
        message: str,
        found: re.Match[str] | None,
        tallied: tuple[bytes | None, ...],
        now: int | None,
    ) -> list[tuple[Rule, tuple[str, ...]]]:
        """Evaluate, for the counters not decided, an entry the caller tallied for the decided ones.

        ``message`` is the entry's MESSAGE, whole and valid, and ``found`` the prefilter's
        match of it; ``tallied`` the raw values of the tally fields (the tally counts those
        that are malformed); ``now`` the entry's time when a side's head is at that time.
        """
        entry = self._pinned.copy()
        entry[MESSAGE] = message
        for index, name in self._tallied_needed:
            if (raw := tallied[index]) is not None:
                entry[name] = raw.decode(errors="replace")
        self._complete(reader, entry, self._untallied_fetch, now)
        return self._rules.evaluate_found(entry, found, self._fetch_later, undecided=True)

    def _complete(
        self, reader: journal._Reader, entry: dict[str, str], fetch: Sequence[str], now: int | None
    ) -> None:
        """Add the fields ``fetch`` to ``entry``, counting malformed ones, and side fields at ``now``."""
        get = reader._get
        for name in fetch:
            try:
                raw = get(name)
            except KeyError:
                continue
            try:
                entry[name] = raw.decode()
            except UnicodeDecodeError:
                self._state.counters[MALFORMED_ENTRIES][("not_utf8",)] += 1  # type: ignore[union-attr]
                entry[name] = raw.decode(errors="replace")
        if now is not None:
            for side in self._sides:
                if now == side.realtime and (side_raw := side.take(reader)) is not None:
                    entry[side.field] = side_raw.decode(errors="replace")

    def _count(
        self,
        hits: list[tuple[Rule, tuple[str, ...]]],
        plain: Mapping[Tallied, int],
        decided: Mapping[Tallied, int],
    ) -> None:
        """Add the hits and the tallies to their counter children, labels bounded.

        ``plain`` tallies plain lines, which count only by the tally fields; ``decided``
        tallies the other entries, whose decided counters count by them.
        """
        counters = self._state.counters  # type: ignore[union-attr]
        tally = collections.Counter(hits)
        for tallies, only in ((plain, None), (decided, self._rules.decided)):
            for key, times in tallies.items():
                for hit in self._rules.evaluate(self._tallied_entry(key, times)):
                    if only is None or hit[0].metric in only:
                        tally[hit] += times
        for key, times in tally.items():
            rule, values = key
            bounded = self._accepted.get(key)
            if bounded is None:
                bounded, overflowed = bound_labels(rule, values, self._seen[rule.metric])
                if overflowed:
                    counters[LABEL_OVERFLOW][(rule.name,)] += times
                else:
                    self._accepted[key] = bounded
            children = counters[rule.metric]
            children[bounded] = children.get(bounded, 0) + times

    def _tallied_entry(self, key: Tallied, times: int) -> dict[str, str]:
        """Return the entry the tally fields' raw values make, counting malformed ones ``times``."""
        entry = self._pinned.copy()
        values = key if isinstance(key, tuple) else (key,)
        for name, raw in zip(self._tally_fields or (), values, strict=True):
            if raw is None:
                continue
            try:
                entry[name] = raw.decode()
            except UnicodeDecodeError:
                self._state.counters[MALFORMED_ENTRIES][("not_utf8",)] += times  # type: ignore[union-attr]
                entry[name] = raw.decode(errors="replace")
        return entry

    def _measure_lag(self, reader: journal._Reader) -> float | None:
        """Return how far the newest matching entry is ahead of the last one read, in seconds."""
        current = self._state
        assert current is not None
        if current.cursor is None or current.realtime_usec is None:
            return None
        reader.seek_tail()
        newest = reader._get_realtime() if reader._previous() else current.realtime_usec
        reader.seek_cursor(current.cursor)
        if not (reader._next() and reader.test_cursor(current.cursor)):
            raise OSError(f"lost the journal position {current.cursor} while measuring the lag")
        return max(0.0, (newest - current.realtime_usec) / 1_000_000)

    def _families(self, current: state.JournalState) -> Iterator[Metric]:
        """Yield the rule counters and the reader's health metrics."""
        helps = {counter.metric: counter.help for counter in self._rules.counters}
        helps.update(
            {
                CURSOR_RESETS: "Times the persisted cursor no longer existed and reading resumed after it.",
                LABEL_OVERFLOW: "Counts whose label value was out of bounds and went to 'other', by rule.",
                MALFORMED_ENTRIES: "Journal entries with a missing, non-UTF-8 or oversized MESSAGE or field.",
                STATE_FILE_RESETS: "Times the state file was empty, NUL-filled or corrupt and was replaced.",
            }
        )
        for metric, names in self._label_names.items():
            family = CounterMetricFamily(
                metric, helps[metric] or f"Journal entries matched by {metric}.", labels=names
            )
            for labels, value in sorted(current.counters.get(metric, {}).items()):
                family.add_metric(labels, value)
            yield family
        if current.realtime_usec is not None:
            yield GaugeMetricFamily(
                "jada_journal_last_entry_timestamp_seconds",
                "Realtime timestamp of the last journal entry counted.",
                value=current.realtime_usec / 1_000_000,
            )
        if self._lag_seconds is not None:
            yield GaugeMetricFamily(
                "jada_journal_lag_seconds",
                "How far the newest matching entry is ahead of the last one counted; 0 when caught up.",
                value=self._lag_seconds,
            )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the journal collector's flags to ``parser``."""
    parser.add_argument(
        "--journal.match",
        dest="journal_match",
        action="append",
        type=parse_match,
        metavar="FIELD=VALUE",
        help=f"journal match, repeatable; same field ORed, different fields ANDed (default: {DEFAULT_MATCH})",
    )
    parser.add_argument(
        "--journal.directory",
        dest="journal_directory",
        type=Path,
        help="read journal files from this directory instead of the system journal",
    )
    parser.add_argument(
        "--journal.state-file",
        dest="journal_state_file",
        type=Path,
        default=DEFAULT_STATE_FILE,
        help="where the cursor and counter values persist (default: %(default)s)",
    )
    parser.add_argument(
        "--journal.read-back",
        dest="journal_read_back",
        type=parse_read_back,
        default="boot",
        help="on first start, read back this far: boot, all, or a duration like 6h (default: %(default)s)",
    )
    parser.add_argument(
        "--journal.scrape-budget-seconds",
        dest="journal_scrape_budget_seconds",
        type=_positive_seconds,
        default=DEFAULT_BUDGET_SECONDS,
        help="at most this much reading per scrape; the rest waits for the next (default: %(default)s)",
    )
    parser.add_argument(
        "--rules.file",
        dest="rules_file",
        type=Path,
        help="YAML file of extra rules, added after the built-in ones",
    )


def from_args(args: argparse.Namespace) -> JournalCollector:
    """Build the collector from parsed flags; raise RulesError for a broken rules file."""
    return JournalCollector(
        load_rule_set(args.rules_file),
        state_file=args.journal_state_file,
        matches=args.journal_match or [DEFAULT_MATCH],
        directory=args.journal_directory,
        read_back=args.journal_read_back,
        budget_seconds=args.journal_scrape_budget_seconds,
    )
