r"""Rules that turn journal entries into counters: the model, the built-ins, YAML loading.

A rule matches on fields (``match``: same field ORed, different fields ANDed; ``absent``:
fields that must not be there) and/or a regular expression on MESSAGE, and adds one to
its counter with labels taken from fields or named captures. Every label is bounded:
either an ``allowed`` set or a ``max_values`` cap on distinct values; anything beyond goes
to the single value ``other`` and is counted, because a log line must never create
unbounded series. For each counter the first matching rule wins, which is how a
structured entry is kept from being counted a second time by a regex fallback: the
built-in rules list the structured form of each event before its plain-line form.

A rules file (``--rules.file``, checked by ``jada-exporter --rules.check FILE``)::

    rules:
      - name: deploy_failed
        metric: jada_deploy_failures_total
        help: Failed deploys seen in the journal.
        match: {_SYSTEMD_UNIT: [jada-agent.service, jada-deploy.service]}
        regex: '^\[deploy\] (?P<service>[\w-]+) failed'
        labels:
          service: {capture: service, max_values: 5}
          # or {field: JADA_SERVICE, allowed: [web, api]}; also map, missing, preset
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

OVERFLOW_VALUE = "other"
MISSING_VALUE = "none"
MAX_LABEL_LENGTH = 128
MESSAGE = "MESSAGE"

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*_total$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FIELD_NAME = re.compile(r"^[A-Z0-9_]+$")
_RULE_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")
# Target labels Prometheus adds itself, and `type` which the metric contract forbids.
_NAMED_GROUP = re.compile(r"\(\?P<[a-zA-Z_][a-zA-Z0-9_]*>")
_RESERVED_LABELS = frozenset({"job", "instance", "type"})
_RULE_KEYS = frozenset({"name", "metric", "help", "match", "absent", "regex", "labels"})
_LABEL_KEYS = frozenset({"field", "capture", "allowed", "max_values", "map", "missing", "preset"})
# Distinct plain-line results kept; beyond that (many units) they are computed each time.
_PLAIN_CACHE_SIZE = 4096
# Counters the journal collector keeps about itself; rules may not reuse their names.
CURSOR_RESETS = "jada_journal_cursor_resets_total"
LABEL_OVERFLOW = "jada_journal_label_overflow_total"
MALFORMED_ENTRIES = "jada_journal_malformed_entries_total"
STATE_FILE_RESETS = "jada_journal_state_file_resets_total"
RESERVED_METRICS = frozenset({CURSOR_RESETS, LABEL_OVERFLOW, MALFORMED_ENTRIES, STATE_FILE_RESETS})


Fetch = Callable[[str], str | None]
Matcher = Callable[[Mapping[str, str], Fetch | None], "tuple[str, ...] | None"]


class RulesError(Exception):
    """A rules file that cannot be used; ``str()`` names the file, the rule and the problem."""


@dataclass(frozen=True)
class Label:
    """One bounded label of a counter and where its value comes from."""

    name: str
    field: str | None = None
    capture: str | None = None
    allowed: frozenset[str] | None = None
    max_values: int | None = None
    value_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
    missing: str = MISSING_VALUE
    preset: tuple[str, ...] = ()


# Compared and hashed by identity: a rule is a key of the per-stride tally of hits.
@dataclass(frozen=True, eq=False)
class Rule:
    """Match entries and count them into ``metric`` with ``labels``."""

    name: str
    metric: str
    help: str
    match: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    absent: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None
    labels: tuple[Label, ...] = ()

    def condition_fields(self) -> frozenset[str]:
        """Return the journal fields needed to decide whether an entry matches."""
        names = set(self.match) | set(self.absent)
        if self.regex is not None:
            names.add(MESSAGE)
        return frozenset(names)

    def label_fields(self) -> frozenset[str]:
        """Return the journal fields the labels are taken from."""
        return frozenset(label.field for label in self.labels if label.field)

    def label_values(self, entry: Mapping[str, str], fetch: Fetch | None = None) -> tuple[str, ...] | None:
        """Return the raw label values when ``entry`` matches, else None.

        ``entry`` holds at least the condition fields the entry has; a label field missing
        from it is asked of ``fetch``, so fields only labels need are read only on a match.
        """
        return self.matcher(entry, fetch)

    @functools.cached_property
    def capture_labels(self) -> Callable[[re.Match[str]], tuple[str, ...]] | None:
        """Return the label values from a match of the regex, for a rule with only a regex.

        That is the shape of every fallback rule: labels from captures, no field conditions.
        None for any other rule.
        """
        if self.regex is None or self.match or self.absent or not all(lb.capture for lb in self.labels):
            return None
        names = tuple(lb.capture for lb in self.labels)
        captures = tuple((lb.missing, lb.value_map) for lb in self.labels)
        as_captured = not any(lb.value_map for lb in self.labels)

        def capture_labels(found: re.Match[str]) -> tuple[str, ...]:
            # group() gives a tuple for two or more names, a string for one, the match for none.
            raw = found.group(*names) if len(names) > 1 else tuple(map(found.group, names))
            if as_captured and None not in raw:
                return raw  # type: ignore[return-value]
            values = []
            for value, (missing, value_map) in zip(raw, captures, strict=True):
                values.append(missing if value is None else value_map.get(value, value))
            return tuple(values)

        return capture_labels

    @functools.cached_property
    def matcher(self) -> Matcher:
        """Return ``label_values`` as a closure over this rule's parts, for the per-entry loop.

        A rule without conditions takes its label fields from ``entry`` alone: the rule set
        reads those fields for every entry, so one missing there is missing from the entry.
        """
        match_items = tuple(self.match.items())
        absent = self.absent
        search = self.regex.search if self.regex is not None else None
        labels = tuple((lb.field, lb.capture or "", lb.missing, lb.value_map) for lb in self.labels)
        if not self.condition_fields() and all(lb.field and not lb.value_map for lb in self.labels):
            names = tuple(lb.field for lb in self.labels)
            defaults = tuple(lb.missing for lb in self.labels)

            def unconditional(entry: Mapping[str, str], fetch: Fetch | None) -> tuple[str, ...] | None:
                return tuple(map(entry.get, names, defaults))  # type: ignore[arg-type]

            return unconditional
        capture_labels = self.capture_labels
        if search is not None and capture_labels is not None:

            def by_regex(entry: Mapping[str, str], fetch: Fetch | None) -> tuple[str, ...] | None:
                message = entry.get(MESSAGE)
                found = search(message) if message is not None else None
                return None if found is None else capture_labels(found)

            return by_regex
        if search is None and not absent and all(lb.field for lb in self.labels):
            # The shape of every structured rule: field values to match, labels from fields.
            fields = tuple((lb.field, lb.missing, lb.value_map) for lb in self.labels)

            def by_fields(entry: Mapping[str, str], fetch: Fetch | None) -> tuple[str, ...] | None:
                for name, allowed in match_items:
                    if entry.get(name) not in allowed:
                        return None
                values = []
                for name, missing, value_map in fields:
                    raw = entry.get(name)  # type: ignore[arg-type]
                    if raw is None and fetch is not None:
                        raw = fetch(name)  # type: ignore[arg-type]
                    values.append(missing if raw is None else value_map.get(raw, raw))
                return tuple(values)

            return by_fields

        def matcher(entry: Mapping[str, str], fetch: Fetch | None) -> tuple[str, ...] | None:
            for name, allowed in match_items:
                if entry.get(name) not in allowed:
                    return None
            for name in absent:
                if name in entry:
                    return None
            groups: Mapping[str, str | None] = {}
            if search is not None:
                message = entry.get(MESSAGE)
                found = search(message) if message is not None else None
                if found is None:
                    return None
                groups = found.groupdict()
            values = []
            for source_field, capture, missing, value_map in labels:
                if source_field is None:
                    raw = groups.get(capture)
                elif source_field in entry:
                    raw = entry[source_field]
                else:
                    raw = fetch(source_field) if fetch is not None else None
                if raw is None:
                    values.append(missing)
                else:
                    values.append(value_map.get(raw, raw) if value_map else raw)
            return tuple(values)

        return matcher


def bound_labels(
    rule: Rule, values: tuple[str, ...], seen: Sequence[set[str]]
) -> tuple[tuple[str, ...], bool]:
    """Replace values outside each label's bounds by ``other``; tell whether any overflowed.

    ``seen`` holds, per label, the distinct values the counter already has; a value is
    added to it when a capped label accepts it.
    """
    bounded = []
    overflowed = False
    for label, value, known in zip(rule.labels, values, seen, strict=True):
        if label.allowed is not None:
            ok = value in label.allowed
        elif value in known:
            ok = True
        else:
            ok = len(value) <= MAX_LABEL_LENGTH and len(known) < (label.max_values or 0)
            if ok:
                known.add(value)
        if ok:
            bounded.append(value)
        else:
            bounded.append(OVERFLOW_VALUE)
            overflowed = True
    return tuple(bounded), overflowed


@dataclass(frozen=True)
class Counter:
    """A counter family made by one or more rules."""

    metric: str
    help: str
    label_names: tuple[str, ...]
    rules: tuple[Rule, ...]

    def preset_children(self) -> list[tuple[str, ...]]:
        """Return the label value sets to expose at 0 before anything is counted."""
        first = self.rules[0]
        if not first.labels or not all(label.preset for label in first.labels):
            return [] if first.labels else [()]
        children: list[tuple[str, ...]] = [()]
        for label in first.labels:
            children = [(*child, value) for child in children for value in label.preset]
        return children


def anchored(regex: re.Pattern[str]) -> bool:
    """Tell whether ``regex`` can only match at the start of a string, by a cautious reading.

    True for a pattern that begins with ``^`` and has no ``|`` outside a group, without the
    MULTILINE flag (where ``^`` matches after each newline), and without VERBOSE or a
    ``(?#...)`` comment (where a comment could hide a parenthesis).
    """
    pattern = regex.pattern
    if not pattern.startswith("^") or "(?#" in pattern or regex.flags & (re.MULTILINE | re.VERBOSE):
        return False
    depth = 0
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            next(chars, None)
        elif char == "[":
            _skip_class(chars)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return False
    return True


def _skip_class(chars: Iterator[str]) -> None:
    """Consume a character class up to its closing bracket (a leading ``]`` or ``^]`` is literal)."""
    first = next(chars, "]")
    if first == "^":
        first = next(chars, "]")
    if first == "\\":
        next(chars, None)
    for char in chars:
        if char == "\\":
            next(chars, None)
        elif char == "]":
            return


def _alternation(patterns: Sequence[str], first: int) -> re.Pattern[str] | None:
    """Join patterns as alternatives named ``_<first>``, ``_<first + 1>``, ...; None if they cannot be.

    Named groups inside become plain groups so that rules sharing group names can be joined.
    """
    joined = "|".join(
        f"(?P<_{first + index}>{_NAMED_GROUP.sub('(?:', pattern)})" for index, pattern in enumerate(patterns)
    )
    try:
        return re.compile(joined)
    except re.error:
        # Back-references to named groups or inline flags cannot be joined; check each rule.
        return None


Step = tuple[int, str, Matcher, Rule, int]


def _labels_of_matching_line(rule: Rule) -> Matcher:
    """Return the labels of an entry whose MESSAGE the chain found ``rule``'s regex matches."""
    match = rule.regex.match  # type: ignore[union-attr]
    capture_labels = rule.capture_labels

    def labels(entry: Mapping[str, str], fetch: Fetch | None) -> tuple[str, ...]:
        return capture_labels(match(entry[MESSAGE]))  # type: ignore[misc,arg-type]

    return labels


class _Arrangement:
    """Steps arranged by what an entry has: a MESSAGE some regex may match, and guarded fields."""

    def __init__(self, steps: Sequence[Step]) -> None:
        unguarded = [step for step in steps if not step[3].match]
        self.plain = tuple(step for step in unguarded if step[3].regex is None)
        # The same object when there are no regex rules, so plain results stay cached.
        self.wanted = tuple(unguarded) if len(unguarded) > len(self.plain) else self.plain
        # Every step an entry without guarded fields meets is a regex-only rule in the chain.
        self.only_chained = bool(self.wanted) and all(step[4] >= 0 for step in self.wanted)
        guarded: dict[str, dict[str, tuple[Step, ...]]] = {}
        for step in steps:
            if step[3].match:
                name, values = next(iter(step[3].match.items()))
                by_value = guarded.setdefault(name, {})
                for value in values:
                    by_value[value] = (*by_value.get(value, ()), step)
        self.guarded = tuple(guarded.items())


class RuleSet:
    """The rules in order, grouped by counter, with the fields they read."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        grouped: dict[str, list[Rule]] = {}
        for rule in self.rules:
            grouped.setdefault(rule.metric, []).append(rule)
        self.counters = tuple(
            Counter(
                metric=metric,
                help=group[0].help,
                label_names=tuple(label.name for label in group[0].labels),
                rules=tuple(group),
            )
            for metric, group in grouped.items()
        )
        eager: set[str] = set()
        wanted: dict[str, set[str]] = {}
        for rule in self.rules:
            eager |= set(rule.absent)
            if rule.regex is not None:
                eager.add(MESSAGE)
            if not rule.condition_fields():
                eager |= rule.label_fields()
            for name, values in rule.match.items():
                wanted.setdefault(name, set()).update(values)
        # Fields read for every entry; label fields of rules with conditions are read only
        # when the rule matched.
        self.eager_fields = tuple(sorted(eager))
        # Match fields no rule needs for every entry, with every value some rule wants: a
        # reader can learn which entries have them from the journal's own index instead of
        # reading the field of each entry.
        self.indexed_fields = {
            name: frozenset(values) for name, values in sorted(wanted.items()) if name not in eager
        }
        regex_rules = [rule for rule in self.rules if rule.regex is not None]
        patterns = [rule.regex.pattern for rule in regex_rules]  # type: ignore[union-attr]
        prefilter = _alternation(patterns, 0) if patterns else None
        # One search that finds whatever any rule's regex might; None when there is none.
        self.search = prefilter.search if prefilter is not None else None
        # When every regex can only match at the start, the prefilter's match names the first
        # rule that matches (the alternatives before it cannot match anywhere), and a match
        # of the rules after that one names the next: a line costs one attempt per matching
        # rule, not one per rule. ``_chain[i]`` tries the alternatives after rule i.
        self._alternative = {f"_{index}": index for index in range(len(regex_rules))}
        self._chain: tuple[Callable[[str], re.Match[str] | None] | None, ...] | None = None
        if prefilter is not None and all(anchored(rule.regex) for rule in regex_rules):  # type: ignore[arg-type]
            rest = [_alternation(patterns[index:], index) for index in range(1, len(patterns))]
            if all(pattern is not None for pattern in rest):
                # Only the start can match, so trying there alone gives what a search gives
                # without trying every later position of a line that does not match.
                self.search = prefilter.match
                self._chain = (*(pattern.match for pattern in rest), None)  # type: ignore[union-attr]
        self._regex_match = tuple(rule.regex.match for rule in regex_rules)  # type: ignore[union-attr]
        chained = {rule: index for index, rule in enumerate(regex_rules)} if self._chain else {}
        # Each rule as a step in counter order. A rule matching on fields is indexed by its
        # first field's values, so an entry only meets the rules its value can satisfy; a
        # plain line that no regex wants (the prefilter says so) skips the regex rules. A
        # regex-only rule in a chain takes its labels from the chain's match of its regex.
        steps: list[Step] = []
        for index, rule in enumerate(rule for counter in self.counters for rule in counter.rules):
            alternative = chained.get(rule, -1) if rule.capture_labels is not None else -1
            function = _labels_of_matching_line(rule) if alternative >= 0 else rule.matcher
            steps.append((index, rule.metric, function, rule, alternative))  # type: ignore[arg-type]
        self._regex_rules = tuple(regex_rules)
        # The plain steps' results are cached by the fields they read, when those are all
        # read for every entry (a rule with conditions, such as absent, is not cached).
        plain_rules = [rule for rule in self.rules if not rule.match and rule.regex is None]
        self._plain_key: tuple[str, ...] | None = None
        if all(not rule.condition_fields() for rule in plain_rules):
            self._plain_key = tuple(sorted(set().union(*(rule.label_fields() for rule in plain_rules))))
        self._plain_hits: dict[tuple[str | None, ...], list[tuple[Rule, tuple[str, ...]]]] = {}
        # An entry with none of the guarded fields and a MESSAGE that ``search`` rejects (or
        # none) gets hits that depend on these fields alone, so a reader may tally such
        # entries by them and evaluate each distinct tuple once. None when that does not
        # hold: a plain rule has conditions, or regexes exist that no prefilter covers.
        has_regex = any(rule.regex is not None for rule in self.rules)
        self.plain_fields = None if has_regex and self.search is None else self._plain_key
        # Counters whose first rule has no conditions: it counts every entry, by fields in
        # plain_fields, so what any entry adds to them depends on those fields alone.
        self.decided = frozenset(
            counter.metric
            for counter in self.counters
            if self.plain_fields is not None and not counter.rules[0].condition_fields()
        )
        # The fields the rules of the other counters need in an entry (others are fetched).
        self.undecided_fields = frozenset().union(
            *(
                rule.condition_fields()
                | (rule.label_fields() if not rule.condition_fields() else frozenset())
                for rule in self.rules
                if rule.metric not in self.decided
            )
        )
        self._all = _Arrangement(steps)
        self._undecided = _Arrangement([step for step in steps if step[1] not in self.decided])
        self.guarded_fields = frozenset(name for name, _ in self._all.guarded)
        # Whether line_hits gives what an entry without guarded fields adds to the counters
        # not decided: all their rules without field conditions are regex-only and chained.
        self.lines_by_chain = self._chain is not None and self._undecided.only_chained
        # Step sequences merged with a guarded field's steps, by the identities of the two
        # parts: each part is one of a few tuples this object keeps, so ids stay unique.
        self._merged: dict[tuple[int, int], tuple[Step, ...]] = {}
        self._plans: dict[tuple[int, ...], tuple[Step, ...]] = {}

    def evaluate(
        self, entry: Mapping[str, str], fetch: Fetch | None = None
    ) -> list[tuple[Rule, tuple[str, ...]]]:
        """Return, for each counter, the first rule matching ``entry`` and its raw label values."""
        message = entry.get(MESSAGE)
        found: re.Match[str] | bool | None = None
        if message is not None:
            found = self.search(message) if self.search is not None else True
        return self.evaluate_found(entry, found, fetch)

    def evaluate_found(
        self,
        entry: Mapping[str, str],
        found: re.Match[str] | bool | None,
        fetch: Fetch | None = None,
        undecided: bool = False,
    ) -> list[tuple[Rule, tuple[str, ...]]]:
        """Evaluate ``entry`` given ``search``'s match of its MESSAGE.

        ``found`` is that match (True when there is no prefilter and there is a MESSAGE) when
        some regex may match, and None when none can. With ``undecided`` the counters in
        ``decided`` are left out: the caller counts them by ``plain_fields``.
        """
        arranged = self._undecided if undecided else self._all
        steps: Sequence[Step] = arranged.wanted if found is not None else arranged.plain
        for name, by_value in arranged.guarded:
            extra = by_value.get(entry.get(name))  # type: ignore[arg-type]
            if extra is not None:
                merge = (id(steps), id(extra))
                merged = self._merged.get(merge)
                if merged is None:
                    merged = self._merged[merge] = tuple(sorted((*steps, *extra)))
                steps = merged
        if steps is self._all.plain and self._plain_key is not None:
            # Most lines are plain ones no rule with conditions wants; what they count
            # depends on a few fields only (unit and priority for the built-ins).
            key = tuple(map(entry.get, self._plain_key))
            cached = self._plain_hits.get(key)
            if cached is None:
                cached = self._run(steps, entry, fetch)
                if len(self._plain_hits) < _PLAIN_CACHE_SIZE:
                    self._plain_hits[key] = cached
            return cached
        if self._chain is None or not isinstance(found, re.Match):
            return self._run(steps, entry, fetch)
        if steps is arranged.wanted and arranged.only_chained:
            return self._chain_hits(found, self.decided if undecided else frozenset())
        matched = self._matched(found)
        # Only the regex rules that matched are worth a step: the plan is the steps without
        # the others, kept for each combination seen (a line matches one or two rules).
        plan_key = (id(steps), *matched)
        plan = self._plans.get(plan_key)
        if plan is None:
            plan = tuple(step for step in steps if step[4] < 0 or step[4] in matched)
            if len(self._plans) < _PLAIN_CACHE_SIZE:
                self._plans[plan_key] = plan
        return self._run(plan, entry, fetch)

    def line_hits(self, found: re.Match[str]) -> list[tuple[Rule, tuple[str, ...]]]:
        """Return the hits, outside the decided counters, of a line without guarded fields.

        ``found`` is ``search``'s match of the line; only when ``lines_by_chain`` is true.
        """
        return self._chain_hits(found, self.decided)

    def _chain_hits(
        self, found: re.Match[str], counted: frozenset[str]
    ) -> list[tuple[Rule, tuple[str, ...]]]:
        """Return the hits of a line only regex-only rules may count, from its chain of matches."""
        message = found.string
        hits = []
        done = set(counted)
        following: re.Match[str] | None = found
        while following is not None:
            index = self._alternative[following.lastgroup]  # type: ignore[index]
            rule = self._regex_rules[index]
            if rule.metric not in done:
                done.add(rule.metric)
                hits.append((rule, rule.capture_labels(self._regex_match[index](message))))  # type: ignore[misc,arg-type]
            rest = self._chain[index]  # type: ignore[index]
            following = rest(message) if rest is not None else None
        return hits

    def _matched(self, found: re.Match[str]) -> tuple[int, ...]:
        """Return the chain positions of the regex rules matching the line ``found`` matched."""
        message = found.string
        matched = []
        following: re.Match[str] | None = found
        while following is not None:
            index = self._alternative[following.lastgroup]  # type: ignore[index]
            matched.append(index)
            rest = self._chain[index]  # type: ignore[index]
            following = rest(message) if rest is not None else None
        return tuple(matched)

    @staticmethod
    def _run(
        steps: Sequence[Step], entry: Mapping[str, str], fetch: Fetch | None
    ) -> list[tuple[Rule, tuple[str, ...]]]:
        """Run the steps in order, keeping the first hit of each counter."""
        hits = []
        counted = None
        for _, metric, function, rule, _ in steps:
            if metric != counted:
                values = function(entry, fetch)
                if values is not None:
                    hits.append((rule, values))
                    counted = metric
        return hits


_PRIORITIES = [str(level) for level in range(8)]
_EXIT_REASONS = ["completed", "max_turns", "error", "timeout", "interrupted"]

# The orchestrator's structured events (docs/CONTRACTS.md) come first for each counter;
# the regular expressions catch the same events as plain lines, including exactly the
# seed's `[port-sheet] token error: HTTP Error 400: Bad Request`. A component name is
# matched possessively (`++`): `]` is not in its class, so giving characters back never
# helps, and every other `[name]` line fails at once instead of retrying shorter names.
BUILTIN_RULES: list[dict[str, Any]] = [
    {
        "name": "entries",
        "metric": "jada_journal_entries_total",
        "help": "Journal entries read, by unit and syslog priority.",
        "labels": {
            "unit": {"field": "_SYSTEMD_UNIT", "max_values": 20},
            "priority": {"field": "PRIORITY", "allowed": [*_PRIORITIES, MISSING_VALUE]},
        },
    },
    {
        "name": "token_error",
        "metric": "jada_journal_token_errors_total",
        "help": "OAuth token refresh errors seen in the journal.",
        "match": {"JADA_EVENT": "token_error"},
        "labels": {
            "component": {"field": "JADA_COMPONENT", "max_values": 10, "preset": ["port-sheet"]},
            "status_code": {"field": "JADA_STATUS_CODE", "max_values": 20, "preset": ["400"]},
        },
    },
    {
        "name": "token_error_line",
        "metric": "jada_journal_token_errors_total",
        "regex": r"^\[(?P<component>[\w.-]++)\] token error:(?: HTTP(?: Error)? (?P<status_code>\d{3})\b)?",
        "labels": {
            "component": {"capture": "component", "max_values": 10},
            "status_code": {"capture": "status_code", "max_values": 20},
        },
    },
    {
        "name": "sync_failed",
        "metric": "jada_journal_sync_failures_total",
        "help": "Failed syncs seen in the journal.",
        "match": {"JADA_EVENT": "sync_failed"},
        "labels": {"component": {"field": "JADA_COMPONENT", "max_values": 10, "preset": ["port-sheet"]}},
    },
    {
        "name": "sync_failed_line",
        "metric": "jada_journal_sync_failures_total",
        "regex": r"^\[(?P<component>[\w.-]++)\] sync failed\b",
        "labels": {"component": {"capture": "component", "max_values": 10}},
    },
    {
        "name": "session_exit",
        "metric": "jada_journal_session_exits_total",
        "help": "Agent session exits seen in the journal, by reason.",
        "match": {"JADA_EVENT": "session_exit"},
        "labels": {"reason": {"field": "JADA_EXIT_REASON", "allowed": _EXIT_REASONS}},
    },
    {
        "name": "session_exit_line",
        "metric": "jada_journal_session_exits_total",
        "regex": r"^\[session\] task \d+ session \d+ exited: (?P<reason>\w+)",
        "labels": {"reason": {"capture": "reason", "allowed": _EXIT_REASONS}},
    },
    {
        # Older daemons only said how the session process ended ("... exit code 1", as in
        # the seed's report): 0 completed, 1 max_turns, 2 error. The phrase has a fixed
        # place, so the many other [session] lines are rejected without a scan.
        "name": "session_exit_code_line",
        "metric": "jada_journal_session_exits_total",
        "regex": r"^\[session\] (?:task \d+ )?session \d+ exit(?:ed with)? code (?P<code>\d+)\b",
        "labels": {
            "reason": {
                "capture": "code",
                "map": {"0": "completed", "1": "max_turns", "2": "error"},
                "allowed": _EXIT_REASONS,
            }
        },
    },
]


def _string_list(value: Any, where: str) -> list[str]:
    """Return ``value`` as a list of strings (a scalar becomes a one-item list)."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str | int) and not isinstance(item, bool) for item in items):
        raise RulesError(f"{where}: expected a string or a non-empty list of strings")
    return [str(item) for item in items]


def _parse_label(name: str, spec: Any, regex: re.Pattern[str] | None, where: str) -> Label:
    """Validate one label spec."""
    where = f"{where}: label {name!r}"
    if not _LABEL_NAME.match(name) or name.startswith("__"):
        raise RulesError(f"{where}: not a valid Prometheus label name")
    if name in _RESERVED_LABELS:
        raise RulesError(f"{where}: the label name {name!r} is reserved; choose another")
    if not isinstance(spec, dict):
        raise RulesError(f"{where}: expected a mapping with field or capture, and allowed or max_values")
    unknown = set(spec) - _LABEL_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)}; allowed keys are {sorted(_LABEL_KEYS)}")
    source_field, capture = spec.get("field"), spec.get("capture")
    if (source_field is None) == (capture is None):
        raise RulesError(
            f"{where}: give exactly one of 'field' (a journal field) or 'capture' (a regex group)"
        )
    if source_field is not None and not (isinstance(source_field, str) and _FIELD_NAME.match(source_field)):
        raise RulesError(f"{where}: field {source_field!r} is not a journal field name (A-Z, 0-9, _)")
    if capture is not None and (regex is None or capture not in regex.groupindex):
        raise RulesError(f"{where}: capture {capture!r} is not a named group of the rule's regex")
    allowed, max_values = spec.get("allowed"), spec.get("max_values")
    if (allowed is None) == (max_values is None):
        raise RulesError(
            f"{where}: unbounded; give exactly one of 'allowed' (a list of values) "
            "or 'max_values' (a cap on distinct values)"
        )
    if max_values is not None and (isinstance(max_values, bool) or not isinstance(max_values, int)):
        raise RulesError(f"{where}: max_values must be a positive integer, not {max_values!r}")
    if max_values is not None and not 1 <= max_values <= 1000:
        raise RulesError(f"{where}: max_values must be between 1 and 1000, not {max_values}")
    allowed_set = frozenset(_string_list(allowed, f"{where}: allowed")) if allowed is not None else None
    value_map = spec.get("map", {})
    if not isinstance(value_map, dict):
        raise RulesError(f"{where}: map must be a mapping of captured value to label value")
    missing = spec.get("missing", MISSING_VALUE)
    if not isinstance(missing, str):
        raise RulesError(f"{where}: missing must be a string")
    preset = tuple(_string_list(spec["preset"], f"{where}: preset")) if "preset" in spec else ()
    if allowed_set is not None:
        preset = preset or tuple(sorted(allowed_set))
        outside = set(preset) - allowed_set
        if outside:
            raise RulesError(f"{where}: preset values {sorted(outside)} are not in allowed")
    elif max_values is not None and len(preset) > max_values:
        raise RulesError(f"{where}: {len(preset)} preset values exceed max_values {max_values}")
    return Label(
        name=name,
        field=source_field,
        capture=capture,
        allowed=allowed_set | {OVERFLOW_VALUE} if allowed_set is not None else None,
        max_values=max_values,
        value_map={str(k): str(v) for k, v in value_map.items()},
        missing=missing,
        preset=preset,
    )


def _parse_rule(spec: Any, index: int, source: str) -> Rule:
    """Validate one rule spec."""
    where = f"{source}: rule {index + 1}"
    if not isinstance(spec, dict):
        raise RulesError(f"{where}: expected a mapping with name, metric and match and/or regex")
    name = spec.get("name")
    if not isinstance(name, str) or not _RULE_NAME.match(name):
        raise RulesError(f"{where}: 'name' is required (letters, digits, _ and -)")
    where = f"{source}: rule {name!r}"
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)}; allowed keys are {sorted(_RULE_KEYS)}")
    metric = spec.get("metric")
    if not isinstance(metric, str) or not _METRIC_NAME.match(metric):
        raise RulesError(
            f"{where}: 'metric' must be a Prometheus counter name ending in _total, not {metric!r}"
        )
    help_text = spec.get("help", "")
    if not isinstance(help_text, str):
        raise RulesError(f"{where}: 'help' must be a string")
    match = spec.get("match", {})
    if not isinstance(match, dict):
        raise RulesError(f"{where}: 'match' must map journal fields to a value or a list of values")
    parsed_match = {}
    for field_name, values in match.items():
        if not isinstance(field_name, str) or not _FIELD_NAME.match(field_name):
            raise RulesError(f"{where}: match field {field_name!r} is not a journal field name (A-Z, 0-9, _)")
        parsed_match[field_name] = frozenset(_string_list(values, f"{where}: match {field_name}"))
    absent = _string_list(spec["absent"], f"{where}: absent") if "absent" in spec else []
    for field_name in absent:
        if not _FIELD_NAME.match(field_name):
            raise RulesError(
                f"{where}: absent field {field_name!r} is not a journal field name (A-Z, 0-9, _)"
            )
    regex = None
    if "regex" in spec:
        if not isinstance(spec["regex"], str):
            raise RulesError(f"{where}: 'regex' must be a string")
        try:
            regex = re.compile(spec["regex"])
        except re.error as exc:
            raise RulesError(f"{where}: regex does not compile: {exc}") from None
    labels_spec = spec.get("labels", {})
    if not isinstance(labels_spec, dict):
        raise RulesError(f"{where}: 'labels' must map label names to their specs")
    labels = tuple(_parse_label(str(k), v, regex, where) for k, v in labels_spec.items())
    return Rule(
        name=name,
        metric=metric,
        help=help_text,
        match=parsed_match,
        absent=tuple(absent),
        regex=regex,
        labels=labels,
    )


def _check_together(rules: Sequence[Rule], source: str) -> None:
    """Check that rule names are unique and every rule of a metric has the same labels."""
    names: set[str] = set()
    first_by_metric: dict[str, Rule] = {}
    for rule in rules:
        where = f"{source}: rule {rule.name!r}"
        if rule.name in names:
            raise RulesError(f"{where}: a rule with this name already exists (built-in ones included)")
        names.add(rule.name)
        if rule.metric in RESERVED_METRICS:
            raise RulesError(f"{where}: metric {rule.metric} is the exporter's own; choose another name")
        first = first_by_metric.setdefault(rule.metric, rule)
        if [lb.name for lb in rule.labels] != [lb.name for lb in first.labels]:
            raise RulesError(
                f"{where}: metric {rule.metric} has labels {[lb.name for lb in first.labels]} "
                f"in rule {first.name!r}; use the same labels in the same order, or another metric"
            )


def parse_rules(specs: Any, source: str) -> list[Rule]:
    """Validate a list of rule specs; raise RulesError naming ``source``, the rule and the problem."""
    if not isinstance(specs, list):
        raise RulesError(f"{source}: expected a list of rules under 'rules'")
    rules = [_parse_rule(spec, index, source) for index, spec in enumerate(specs)]
    _check_together(rules, source)
    return rules


def builtin_rules() -> list[Rule]:
    """Return the built-in rules for the orchestrator's events and the seed's plain lines."""
    return parse_rules(BUILTIN_RULES, "<built-in rules>")


def load_file(path: str | Path) -> list[Rule]:
    """Load a user rules file; raise RulesError naming the file, the rule and the problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read the rules file: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or set(document) != {"rules"}:
        raise RulesError(f"{path}: expected a mapping with one key, 'rules', holding a list of rules")
    return parse_rules(document["rules"], str(path))


def load_rule_set(path: str | Path | None) -> RuleSet:
    """Return the built-in rules followed by the user's rules from ``path``, checked together."""
    rules = builtin_rules()
    if path is not None:
        rules += load_file(path)
        _check_together(rules, str(path))
    return RuleSet(rules)


def check_file(path: str | Path) -> list[str]:
    """Return the problems of a rules file (empty when it is fine), for ``--rules.check``."""
    try:
        load_rule_set(path)
    except RulesError as exc:
        return [str(exc)]
    return []
