"""Rules as specifications: entries in, counter hits out; rule files in, named problems out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.rules import (
    OVERFLOW_VALUE,
    RulesError,
    RuleSet,
    anchored,
    bound_labels,
    builtin_rules,
    check_file,
    load_rule_set,
    parse_rules,
)

UNIT = {"_SYSTEMD_UNIT": "jada-agent.service", "PRIORITY": "6"}


def hits(message: str | None, **fields: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Return, per metric, the rule that counted the entry and its label values."""
    entry = dict(UNIT, **fields)
    if message is not None:
        entry["MESSAGE"] = message
    return {rule.metric: (rule.name, values) for rule, values in RuleSet(builtin_rules()).evaluate(entry)}


def test_seed_token_error_line_counts_status_400_for_port_sheet() -> None:
    found = hits("[port-sheet] token error: HTTP Error 400: Bad Request")
    assert found["jada_journal_token_errors_total"] == ("token_error_line", ("port-sheet", "400"))


def test_new_token_error_line_with_oauth_error_counts_its_status() -> None:
    found = hits("[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked.")
    assert found["jada_journal_token_errors_total"] == ("token_error_line", ("port-sheet", "400"))


def test_token_error_line_without_http_status_counts_status_none() -> None:
    found = hits("[port-sheet] token error: connection refused")
    assert found["jada_journal_token_errors_total"] == ("token_error_line", ("port-sheet", "none"))


def test_seed_sync_failed_line_counts_for_its_component() -> None:
    found = hits("[port-sheet] sync failed at 2026-05-13T14:30:00Z")
    assert found["jada_journal_sync_failures_total"] == ("sync_failed_line", ("port-sheet",))


def test_session_exit_line_counts_its_reason() -> None:
    found = hits("[session] task 7 session 12 exited: max_turns after 30 turns (exit code 1)")
    assert found["jada_journal_session_exits_total"] == ("session_exit_line", ("max_turns",))


def test_session_turn_lines_are_not_session_exits() -> None:
    assert "jada_journal_session_exits_total" not in hits(
        "[session] task 7 session 12 turn 3: exit code 1 from bash"
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("[session] task 3 session 1 exit code 1", "max_turns"),
        ("[session] task 4 session 2 exited with code 0", "completed"),
        ("[session] session 3 exit code 2", "error"),
    ],
)
def test_session_line_with_only_an_exit_code_counts_the_reason_of_that_code(
    message: str, reason: str
) -> None:
    assert hits(message)["jada_journal_session_exits_total"] == ("session_exit_code_line", (reason,))


def test_structured_token_error_counts_once_by_its_fields_not_again_by_its_message() -> None:
    found = hits(
        "[port-sheet] token error: HTTP 400 invalid_grant: Token has been expired or revoked.",
        JADA_EVENT="token_error",
        JADA_COMPONENT="port-sheet",
        JADA_STATUS_CODE="401",
    )
    assert found["jada_journal_token_errors_total"] == ("token_error", ("port-sheet", "401"))


def test_structured_session_exit_counts_the_exit_reason_field() -> None:
    found = hits(
        "[session] task 7 session 12 exited: max_turns after 30 turns (exit code 1)",
        JADA_EVENT="session_exit",
        JADA_EXIT_REASON="timeout",
    )
    assert found["jada_journal_session_exits_total"] == ("session_exit", ("timeout",))


def test_structured_events_whose_messages_name_no_failure_count_only_as_entries() -> None:
    for message, kind in [
        ("[port-sheet] sync ok at 2026-05-13T16:00:00Z: 12 rows", "sync_ok"),
        ("[job] port_sheet_sync finished: failure in 0.4s", "job_run"),
        ("[session] task 7 session 12 started", "session_start"),
    ]:
        assert set(hits(message, JADA_EVENT=kind)) == {"jada_journal_entries_total"}


def test_every_entry_counts_by_unit_and_priority() -> None:
    assert hits("GET /metrics 200")["jada_journal_entries_total"] == (
        "entries",
        ("jada-agent.service", "6"),
    )


def test_entry_without_message_counts_only_as_an_entry() -> None:
    assert set(hits(None)) == {"jada_journal_entries_total"}


def test_label_fields_are_fetched_only_when_a_rule_matched() -> None:
    asked: list[str] = []

    def fetch(name: str) -> str | None:
        asked.append(name)
        return {"JADA_COMPONENT": "port-sheet", "JADA_STATUS_CODE": "400"}.get(name)

    rules = RuleSet(builtin_rules())
    rules.evaluate(dict(UNIT, MESSAGE="plain line"), fetch)
    assert asked == []
    found = rules.evaluate(dict(UNIT, MESSAGE="x", JADA_EVENT="token_error"), fetch)
    assert sorted(asked) == ["JADA_COMPONENT", "JADA_STATUS_CODE"]
    assert [values for rule, values in found if rule.name == "token_error"] == [("port-sheet", "400")]


def test_every_entry_needs_only_message_unit_and_priority_the_event_field_is_indexed() -> None:
    rules = RuleSet(builtin_rules())
    assert rules.eager_fields == ("MESSAGE", "PRIORITY", "_SYSTEMD_UNIT")
    assert rules.indexed_fields == {"JADA_EVENT": frozenset({"token_error", "sync_failed", "session_exit"})}


def test_a_field_a_rule_needs_absent_is_read_for_every_entry_not_indexed() -> None:
    rules = RuleSet(
        parse_rules(
            [rule(match={"JADA_EVENT": "deploy"}), {**rule(absent=["JADA_EVENT"]), "name": "plain"}], "x"
        )
    )
    assert "JADA_EVENT" in rules.eager_fields
    assert rules.indexed_fields == {}


def test_plain_lines_of_the_built_ins_depend_on_unit_and_priority_alone() -> None:
    rules = RuleSet(builtin_rules())
    assert rules.plain_fields == ("PRIORITY", "_SYSTEMD_UNIT")
    assert rules.guarded_fields == {"JADA_EVENT"}
    assert rules.search is not None
    assert rules.search("GET /metrics 200 0.002s") is None
    assert rules.search("[port-sheet] sync failed at 2026-05-13T14:30:00Z") is not None


def test_plain_lines_have_no_deciding_fields_when_a_plain_rule_has_conditions() -> None:
    rules = RuleSet([*builtin_rules(), *parse_rules([{**rule(absent=["JADA_EVENT"]), "name": "plain"}], "x")])
    assert rules.plain_fields is None


def test_plain_lines_have_no_deciding_fields_when_no_prefilter_covers_the_regexes() -> None:
    rules = RuleSet(parse_rules([rule(regex=r"(?P<w>\w+) (?P=w)", labels={})], "x"))
    assert rules.search is None
    assert rules.plain_fields is None


def test_the_callers_prefilter_verdict_is_taken_as_given() -> None:
    rules = RuleSet(builtin_rules())
    message = "[port-sheet] sync failed at 2026-05-13T14:30:00Z"
    entry = dict(UNIT, MESSAGE=message)
    found = rules.search(message)  # type: ignore[misc]
    assert {r.name for r, _ in rules.evaluate_found(entry, found)} == {"entries", "sync_failed_line"}
    assert {r.name for r, _ in rules.evaluate_found(entry, None)} == {"entries"}


def rule(**spec: object) -> dict[str, object]:
    return {"name": "deploys", "metric": "jada_deploys_total", **spec}


def test_user_rule_with_backreference_still_matches_without_the_joined_prefilter(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(
        """
rules:
  - name: repeated
    metric: jada_repeated_words_total
    regex: '(?P<word>\\w+) (?P=word)'
    labels:
      word: {capture: word, max_values: 3}
"""
    )
    found = load_rule_set(path).evaluate(dict(UNIT, MESSAGE="it failed failed again"))
    assert [(r.name, v) for r, v in found if r.name == "repeated"] == [("repeated", ("failed",))]


def test_bound_labels_send_values_outside_the_allowed_set_to_other() -> None:
    (reason_rule,) = [r for r in builtin_rules() if r.name == "session_exit"]
    assert bound_labels(reason_rule, ("max_turns",), [set()]) == (("max_turns",), False)
    assert bound_labels(reason_rule, ("exploded",), [set()]) == ((OVERFLOW_VALUE,), True)


def test_bound_labels_keep_the_first_values_up_to_the_cap_then_send_the_rest_to_other() -> None:
    (capped,) = parse_rules(
        [rule(regex=r"(?P<svc>\w+)", labels={"svc": {"capture": "svc", "max_values": 2}})], "x"
    )
    seen: list[set[str]] = [set()]
    results = [bound_labels(capped, (value,), seen) for value in ["a", "b", "c", "a", "d"]]
    assert results == [
        (("a",), False),
        (("b",), False),
        ((OVERFLOW_VALUE,), True),
        (("a",), False),
        ((OVERFLOW_VALUE,), True),
    ]


def test_bound_labels_send_an_overlong_value_to_other_even_under_the_cap() -> None:
    (capped,) = parse_rules(
        [rule(regex=r"(?P<svc>\w+)", labels={"svc": {"capture": "svc", "max_values": 5}})], "x"
    )
    assert bound_labels(capped, ("x" * 500,), [set()]) == ((OVERFLOW_VALUE,), True)


def test_preset_children_cover_every_allowed_reason_and_known_component() -> None:
    counters = {c.metric: c for c in RuleSet(builtin_rules()).counters}
    assert counters["jada_journal_session_exits_total"].preset_children() == [
        ("completed",),
        ("error",),
        ("interrupted",),
        ("max_turns",),
        ("timeout",),
    ]
    assert counters["jada_journal_token_errors_total"].preset_children() == [("port-sheet", "400")]
    assert counters["jada_journal_sync_failures_total"].preset_children() == [("port-sheet",)]
    assert counters["jada_journal_entries_total"].preset_children() == []


GOOD = """
rules:
  - name: deploy_failed
    metric: jada_deploy_failures_total
    help: Failed deploys seen in the journal.
    match:
      _SYSTEMD_UNIT: [jada-agent.service, jada-deploy.service]
    regex: '^\\[deploy\\] (?P<service>[\\w-]+) failed'
    labels:
      service: {capture: service, max_values: 5}
"""


def test_a_valid_rules_file_has_no_problems_and_adds_its_counter(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(GOOD)
    assert check_file(path) == []
    rules = load_rule_set(path)
    found = rules.evaluate(dict(UNIT, MESSAGE="[deploy] web failed: exit 1"))
    assert [(r.name, v) for r, v in found if r.metric == "jada_deploy_failures_total"] == [
        ("deploy_failed", ("web",))
    ]
    other_unit = dict(UNIT, _SYSTEMD_UNIT="cron.service", MESSAGE="[deploy] web failed")
    assert all(r.metric != "jada_deploy_failures_total" for r, _ in rules.evaluate(other_unit))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [", "not valid YAML"),
        ("- just a list", "expected a mapping with one key, 'rules'"),
        (
            "rules:\n  - name: a\n    metric: jada_a_total\n    regex: 'x(?P<v>\\w+)'\n"
            "    labels:\n      v: {capture: v}\n",
            "rule 'a': label 'v': unbounded",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_a_total\n    regex: '(unclosed'\n",
            "rule 'a': regex does not compile",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_a_total\n    regex: 'x'\n"
            "    labels:\n      v: {capture: v, max_values: 3}\n",
            "rule 'a': label 'v': capture 'v' is not a named group",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_a_total\n    labels:\n"
            "      job: {field: JOB, max_values: 3}\n",
            "rule 'a': label 'job': the label name 'job' is reserved",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_a\n",
            "rule 'a': 'metric' must be a Prometheus counter name ending in _total",
        ),
        (
            "rules:\n  - name: entries\n    metric: jada_a_total\n",
            "rule 'entries': a rule with this name already exists",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_journal_sync_failures_total\n    regex: x\n",
            "rule 'a': metric jada_journal_sync_failures_total has labels ['component']",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_journal_cursor_resets_total\n",
            "rule 'a': metric jada_journal_cursor_resets_total is the exporter's own",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_a_total\n    regexp: x\n",
            "rule 'a': unknown keys ['regexp']",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_a_total\n    match: {unit: x}\n",
            "match field 'unit' is not",
        ),
        (
            "rules:\n  - name: a\n    metric: jada_a_total\n    labels:\n"
            "      v: {field: V, max_values: 0}\n",
            "max_values must be between 1 and 1000",
        ),
        ("rules:\n  - metric: jada_a_total\n", "rule 1: 'name' is required"),
    ],
)
def test_a_broken_rules_file_is_reported_with_file_rule_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(text)
    problems = check_file(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: ")
    assert problem in problems[0]
    with pytest.raises(RulesError, match=r"rules\.yml"):
        load_rule_set(path)


def test_a_missing_rules_file_is_reported_by_name(tmp_path: Path) -> None:
    problems = check_file(tmp_path / "absent.yml")
    assert problems == [
        f"{tmp_path / 'absent.yml'}: cannot read the rules file: " + problems[0].split(": ", 2)[2]
    ]
    assert "No such file" in problems[0]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^\[session\] task \d+", True),
        (r"^(?:a|b)c", True),
        (r"^[|(]x|", False),
        (r"^[]|]x", True),
        (r"^[^]|(]x", True),
        (r"^a\|b", True),
        (r"^a|b", False),
        (r"a", False),
        (r"(?m)^a", False),
        (r"(?x)^a", False),
        (r"^a(?#(|)b", False),
    ],
)
def test_a_pattern_is_anchored_only_when_it_can_match_at_the_start_alone(
    pattern: str, expected: bool
) -> None:
    assert anchored(re.compile(pattern)) is expected


CHAIN_RULES = [
    {
        "name": "a1",
        "metric": "jada_a_total",
        "regex": r"^x(?P<v>\d)",
        "labels": {"v": {"capture": "v", "max_values": 5}},
    },
    {
        "name": "a2",
        "metric": "jada_a_total",
        "regex": r"^(?P<v>\w)",
        "labels": {"v": {"capture": "v", "max_values": 5}},
    },
    {
        "name": "b1",
        "metric": "jada_b_total",
        "regex": r"^x1(?P<w>y)?",
        "labels": {"w": {"capture": "w", "max_values": 5}},
    },
    {"name": "c1", "metric": "jada_c_total", "regex": r"^z"},
]
LINES = ["x1y", "x1", "x2", "xa", "z", "zz x1", "", "-x1"]


def first_matching_rule_of_each_counter(rules: RuleSet, message: str) -> list[tuple[str, tuple[str, ...]]]:
    """The specification: per counter, in order, the first rule whose own regex matches."""
    found = []
    for counter in rules.counters:
        for rule in counter.rules:
            values = rule.label_values({"MESSAGE": message})
            if values is not None:
                found.append((rule.name, values))
                break
    return found


@pytest.mark.parametrize("extra", [[], [{"name": "d1", "metric": "jada_d_total", "regex": r"y$"}]])
def test_the_first_matching_rule_of_each_counter_counts_with_or_without_the_chain(extra: list) -> None:
    rules = RuleSet(parse_rules(CHAIN_RULES + extra, "x"))
    assert (rules._chain is not None) is (not extra)
    for message in LINES:
        found = [(rule.name, values) for rule, values in rules.evaluate({"MESSAGE": message})]
        assert found == first_matching_rule_of_each_counter(rules, message), message


def test_a_counter_whose_first_rule_counts_every_entry_is_decided_by_the_plain_fields() -> None:
    rules = RuleSet(builtin_rules())
    assert rules.decided == {"jada_journal_entries_total"}
    assert rules.lines_by_chain
    message = "[port-sheet] token error: HTTP Error 400: Bad Request"
    found = rules.search(message)  # type: ignore[misc]
    assert found is not None
    everything = [(r.name, v) for r, v in rules.evaluate(dict(UNIT, MESSAGE=message))]
    assert everything == [
        ("entries", ("jada-agent.service", "6")),
        ("token_error_line", ("port-sheet", "400")),
    ]
    assert [(r.name, v) for r, v in rules.line_hits(found)] == everything[1:]
    undecided = rules.evaluate_found(dict(UNIT, MESSAGE=message), found, undecided=True)
    assert [(r.name, v) for r, v in undecided] == everything[1:]


def test_a_catch_all_rule_after_a_regex_rule_does_not_decide_its_counter() -> None:
    rules = RuleSet(
        [
            *builtin_rules(),
            *parse_rules(
                [
                    rule(regex="^(?P<k>x)", labels={"k": {"capture": "k", "max_values": 3}}),
                    {**rule(labels={"k": {"field": "PRIORITY", "max_values": 3}}), "name": "rest"},
                ],
                "x",
            ),
        ]
    )
    assert rules.decided == {"jada_journal_entries_total"}
    assert not rules.lines_by_chain
    found = rules.evaluate_found(dict(UNIT, MESSAGE="xa"), rules.search("xa"), undecided=True)  # type: ignore[misc]
    assert [(r.name, v) for r, v in found] == [("deploys", ("x",))]
