"""The journal collector over real journal files written by systemd-journal-remote."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from journalfixtures import START_USEC, STEP_USEC, entry, event, token_error_event, write_journal
from prometheus_client import CollectorRegistry, generate_latest

from exporter import state
from exporter.journal import (
    DEFAULT_MATCH,
    JournalCollector,
    JournalError,
    add_arguments,
    from_args,
    pinned_fields,
)
from exporter.rules import RulesError, load_rule_set

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

SEED_LINES = [
    entry("[session] task 7 session 1 exited: max_turns after 30 turns (exit code 1)"),
    entry("[session] task 8 session 2 exited: completed after 12 turns (exit code 0)"),
    entry("[session] task 9 session 3 exited: max_turns after 30 turns (exit code 1)"),
    entry("[port-sheet] token error: HTTP Error 400: Bad Request", priority="3"),
    entry("[port-sheet] sync failed at 2026-05-13T14:30:00Z", priority="3"),
    entry("[port-sheet] sync failed at 2026-05-13T15:00:00Z", priority="3"),
    entry("[port-sheet] sync failed at 2026-05-13T15:30:00Z", priority="3"),
]


def make_collector(tmp_path: Path, directory: Path, **options: object) -> JournalCollector:
    """Return a collector over ``directory`` that keeps its state under ``tmp_path``."""
    rules_file = options.pop("rules_file", None)
    settings: dict = {"read_back": "all", "budget_seconds": 60.0, **options}
    return JournalCollector(
        load_rule_set(rules_file),  # type: ignore[arg-type]
        state_file=tmp_path / "state" / "journal-state.json",
        directory=directory,
        **settings,
    )


def scrape(collector: JournalCollector) -> Samples:
    """Collect once and return every sample by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_seed_lines_give_the_seed_counts(tmp_path: Path) -> None:
    write_journal(tmp_path / "journal", SEED_LINES)
    samples = scrape(make_collector(tmp_path, tmp_path / "journal"))
    assert value(samples, "jada_journal_token_errors_total", component="port-sheet", status_code="400") == 1
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 3
    assert value(samples, "jada_journal_session_exits_total", reason="max_turns") == 2
    assert value(samples, "jada_journal_session_exits_total", reason="completed") == 1
    assert value(samples, "jada_journal_session_exits_total", reason="error") == 0
    assert value(samples, "jada_journal_entries_total", unit="jada-agent.service", priority="6") == 3
    assert value(samples, "jada_journal_entries_total", unit="jada-agent.service", priority="3") == 4
    last = (START_USEC + 6 * STEP_USEC) / 1e6
    assert value(samples, "jada_journal_last_entry_timestamp_seconds") == last
    assert value(samples, "jada_journal_lag_seconds") == 0


def test_structured_and_plain_forms_of_the_same_events_are_both_counted_once(tmp_path: Path) -> None:
    write_journal(
        tmp_path / "journal",
        [
            entry("[port-sheet] token error: HTTP Error 400: Bad Request"),
            token_error_event(),
            entry("[port-sheet] sync failed at 2026-05-13T14:30:00Z"),
            event(
                "[port-sheet] sync failed at 2026-05-13T15:00:00Z: token",
                "sync_failed",
                component="port-sheet",
            ),
            event("[port-sheet] sync ok at 2026-05-13T16:00:00Z: 12 rows", "sync_ok", component="port-sheet"),
            event(
                "[session] task 7 session 12 exited: max_turns after 30 turns (exit code 1)",
                "session_exit",
                exit_reason="max_turns",
                exit_code="1",
            ),
            entry("[session] task 7 session 13 exited: max_turns after 30 turns (exit code 1)"),
        ],
    )
    samples = scrape(make_collector(tmp_path, tmp_path / "journal"))
    assert value(samples, "jada_journal_token_errors_total", component="port-sheet", status_code="400") == 2
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 2
    assert value(samples, "jada_journal_session_exits_total", reason="max_turns") == 2


def test_error_series_exist_at_zero_before_the_first_error(tmp_path: Path) -> None:
    write_journal(tmp_path / "journal", [entry("scheduler idle")])
    samples = scrape(make_collector(tmp_path, tmp_path / "journal"))
    assert value(samples, "jada_journal_token_errors_total", component="port-sheet", status_code="400") == 0
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 0
    assert value(samples, "jada_journal_cursor_resets_total") == 0
    assert value(samples, "jada_journal_label_overflow_total", rule="token_error_line") == 0


def test_bad_entries_are_counted_as_designed_and_nothing_crashes(tmp_path: Path) -> None:
    write_journal(
        tmp_path / "journal",
        [
            entry(b"\x00\x01binary\nline\x7f"),
            entry(b"[port-sheet] sync failed at \xff\xfe"),
            entry("[port-sheet] token error: HTTP Error 400: " + "x" * 1_000_000),
            entry(None),
            entry("[port-sheet] sync failed at 2026-05-13T14:30:00Z", unit="cron.service"),
            entry("[port-sheet] token error: HTTP Error 400: Bad Request", unit="other.service"),
        ],
    )
    samples = scrape(make_collector(tmp_path, tmp_path / "journal"))
    assert value(samples, "jada_journal_entries_total", unit="jada-agent.service", priority="6") == 4
    assert total(samples, "jada_journal_entries_total") == 4
    assert value(samples, "jada_journal_malformed_entries_total", problem="not_utf8") == 1
    assert value(samples, "jada_journal_malformed_entries_total", problem="oversized") == 1
    assert value(samples, "jada_journal_malformed_entries_total", problem="no_message") == 1
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 1
    assert value(samples, "jada_journal_token_errors_total", component="port-sheet", status_code="400") == 1


def test_a_non_utf8_field_of_a_plain_line_is_counted_malformed_once_per_entry(tmp_path: Path) -> None:
    write_journal(tmp_path / "journal", [entry(f"plain {i}", priority=b"\xff") for i in range(3)])
    samples = scrape(make_collector(tmp_path, tmp_path / "journal"))
    assert value(samples, "jada_journal_malformed_entries_total", problem="not_utf8") == 3
    assert value(samples, "jada_journal_entries_total", unit="jada-agent.service", priority="other") == 3
    assert value(samples, "jada_journal_label_overflow_total", rule="entries") == 3


def test_user_rules_on_fields_read_for_every_entry_see_plain_lines(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(
        "rules:\n"
        "  - name: errors\n    metric: jada_errors_total\n    match: {PRIORITY: '3'}\n"
        "  - name: untagged\n    metric: jada_untagged_total\n    absent: [SYSLOG_IDENTIFIER]\n"
    )
    write_journal(
        tmp_path / "journal",
        [entry("a", priority="3"), entry("b"), entry("c", priority="3"), {"MESSAGE": "d", "PRIORITY": "6"}],
    )
    matches = ["PRIORITY=3", "PRIORITY=6"]
    samples = scrape(make_collector(tmp_path, tmp_path / "journal", rules_file=rules_file, matches=matches))
    assert value(samples, "jada_errors_total") == 2
    assert value(samples, "jada_untagged_total") == 1
    assert total(samples, "jada_journal_entries_total") == 4


def test_a_catch_all_after_a_regex_rule_counts_only_the_lines_the_regex_does_not(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(
        "rules:\n"
        "  - name: deploy_line\n    metric: jada_deploys_total\n    regex: '^deploy (?P<kind>\\w+)'\n"
        "    labels: {kind: {capture: kind, max_values: 3}}\n"
        "  - name: other\n    metric: jada_deploys_total\n"
        "    labels: {kind: {field: PRIORITY, max_values: 3}}\n"
    )
    write_journal(tmp_path / "journal", [entry("deploy web"), entry("idle"), *SEED_LINES])
    samples = scrape(make_collector(tmp_path, tmp_path / "journal", rules_file=rules_file))
    assert value(samples, "jada_deploys_total", kind="web") == 1
    assert value(samples, "jada_deploys_total", kind="6") == 4
    assert value(samples, "jada_deploys_total", kind="3") == 4
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 3
    assert total(samples, "jada_journal_entries_total") == 9


def test_matches_or_the_same_field_and_and_different_fields(tmp_path: Path) -> None:
    write_journal(
        tmp_path / "journal",
        [
            entry("a3", unit="a.service", priority="3"),
            entry("a6", unit="a.service", priority="6"),
            entry("b3", unit="b.service", priority="3"),
            entry("c3", unit="c.service", priority="3"),
        ],
    )
    matches = ["_SYSTEMD_UNIT=a.service", "_SYSTEMD_UNIT=b.service", "PRIORITY=3"]
    samples = scrape(make_collector(tmp_path, tmp_path / "journal", matches=matches))
    assert value(samples, "jada_journal_entries_total", unit="a.service", priority="3") == 1
    assert value(samples, "jada_journal_entries_total", unit="b.service", priority="3") == 1
    assert total(samples, "jada_journal_entries_total") == 2


def test_plus_between_matches_ors_the_groups_as_journalctl_does(tmp_path: Path) -> None:
    write_journal(
        tmp_path / "journal",
        [
            entry("a3", unit="a.service", priority="3"),
            entry("a6", unit="a.service"),
            entry("c6", unit="c.service"),
        ],
    )
    matches = ["_SYSTEMD_UNIT=a.service", "PRIORITY=3", "+", "_SYSTEMD_UNIT=c.service"]
    samples = scrape(make_collector(tmp_path, tmp_path / "journal", matches=matches))
    assert value(samples, "jada_journal_entries_total", unit="a.service", priority="3") == 1
    assert value(samples, "jada_journal_entries_total", unit="c.service", priority="6") == 1
    assert total(samples, "jada_journal_entries_total") == 2


def test_a_pinned_match_field_is_not_read_per_entry() -> None:
    assert pinned_fields([DEFAULT_MATCH, "PRIORITY=3"]) == {
        "_SYSTEMD_UNIT": "jada-agent.service",
        "PRIORITY": "3",
    }
    assert pinned_fields(["_SYSTEMD_UNIT=a.service", "_SYSTEMD_UNIT=b.service"]) == {}
    assert pinned_fields(["_SYSTEMD_UNIT=a.service", "+", "PRIORITY=3"]) == {}


def test_a_restart_continues_after_the_persisted_cursor_without_resetting_counters(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    write_journal(journal_dir, SEED_LINES, name="first")
    first = make_collector(tmp_path, journal_dir)
    scrape(first)
    first.close()
    later = START_USEC + 3600 * 1_000_000
    write_journal(
        journal_dir, [entry("[port-sheet] sync failed at 2026-05-13T15:00:00Z")] * 2, "second", later
    )
    samples = scrape(make_collector(tmp_path, journal_dir))
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 5
    assert total(samples, "jada_journal_entries_total") == 9
    assert value(samples, "jada_journal_cursor_resets_total") == 0


def test_an_open_collector_sees_a_new_journal_file_appear(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    write_journal(journal_dir, SEED_LINES, name="first")
    collector = make_collector(tmp_path, journal_dir)
    assert total(scrape(collector), "jada_journal_entries_total") == 7
    write_journal(journal_dir, [entry("[port-sheet] sync failed")], "second", START_USEC + 10**9)
    samples = scrape(collector)
    assert total(samples, "jada_journal_entries_total") == 8
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 4


def test_a_vacuumed_cursor_is_counted_and_reading_resumes_after_it(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    old = write_journal(journal_dir, SEED_LINES, name="old")
    first = make_collector(tmp_path, journal_dir)
    scrape(first)
    first.close()
    old.unlink()
    write_journal(
        journal_dir,
        [
            entry("[port-sheet] sync failed at 2026-05-13T16:00:00Z"),
            event(
                "[port-sheet] sync failed at 2026-05-13T16:30:00Z: x", "sync_failed", component="port-sheet"
            ),
        ],
        "new",
        START_USEC + 10**9,
    )
    samples = scrape(make_collector(tmp_path, journal_dir))
    assert value(samples, "jada_journal_cursor_resets_total") == 1
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 5
    assert total(samples, "jada_journal_entries_total") == 9


def test_structured_events_after_the_last_read_entry_vacuumed_while_running_are_counted_once(
    tmp_path: Path,
) -> None:
    journal_dir = tmp_path / "journal"

    def token(n: int) -> dict:
        return event(
            f"[port-sheet] token error: HTTP 401 x{n}",
            "token_error",
            component="port-sheet",
            status_code="401",
        )

    old = write_journal(journal_dir, [entry("line"), token(0)], "old")
    write_journal(journal_dir, [entry("interleaved")], "other", START_USEC + STEP_USEC // 2)
    collector = make_collector(tmp_path, journal_dir)
    scrape(collector)
    old.unlink()
    write_journal(journal_dir, [token(1), entry("line"), token(2)], "new", START_USEC + 10**9)
    samples = scrape(collector)
    assert value(samples, "jada_journal_token_errors_total", component="port-sheet", status_code="401") == 3
    assert total(samples, "jada_journal_entries_total") == 6


def test_a_lost_cursor_resumes_at_the_oldest_entry_after_its_timestamp(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    write_journal(journal_dir, [entry(f"line {i}") for i in range(10)])
    gone = "s=00000000000000000000000000000001;i=99;b=6a0f1c2b3d4e5f60718293a4b5c6d7e8;m=1;t=1;x=1"
    state_file = tmp_path / "state" / "journal-state.json"
    state.save(state_file, state.JournalState(cursor=gone, realtime_usec=START_USEC + 5 * STEP_USEC))
    samples = scrape(make_collector(tmp_path, journal_dir))
    assert value(samples, "jada_journal_cursor_resets_total") == 1
    assert total(samples, "jada_journal_entries_total") == 4


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty"), (b'{"version":1,"cursor":"s=a', "corrupt"), (b"\0" * 512, "nul_bytes")],
)
def test_a_damaged_state_file_is_counted_and_replaced_not_fatal(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    write_journal(tmp_path / "journal", SEED_LINES)
    state_file = tmp_path / "state" / "journal-state.json"
    state_file.parent.mkdir()
    state_file.write_bytes(content)
    samples = scrape(make_collector(tmp_path, tmp_path / "journal"))
    assert value(samples, "jada_journal_state_file_resets_total", problem=problem) == 1
    assert total(samples, "jada_journal_entries_total") == 7
    replaced = state.load(state_file)
    assert replaced is not None
    assert replaced.counters["jada_journal_state_file_resets_total"][(problem,)] == 1


def test_a_tiny_budget_reads_a_bounded_slice_per_scrape_and_reports_the_lag(tmp_path: Path) -> None:
    write_journal(tmp_path / "journal", [entry(f"line {i}") for i in range(1000)], step_usec=1_000_000)
    collector = make_collector(tmp_path, tmp_path / "journal", budget_seconds=1e-9)
    first = scrape(collector)
    read = total(first, "jada_journal_entries_total")
    assert 0 < read <= 256
    assert value(first, "jada_journal_lag_seconds") == 1000 - read
    scrapes = 1
    samples = first
    while value(samples, "jada_journal_lag_seconds") != 0:
        samples = scrape(collector)
        scrapes += 1
    assert total(samples, "jada_journal_entries_total") == 1000
    assert scrapes >= 4


def test_first_start_reads_back_from_boot(tmp_path: Path) -> None:
    write_journal(tmp_path / "journal", [entry(f"line {i}") for i in range(10)])
    boot = (START_USEC + 6 * STEP_USEC) / 1e6
    collector = make_collector(tmp_path, tmp_path / "journal", read_back="boot", boot_time=lambda: boot)
    assert total(scrape(collector), "jada_journal_entries_total") == 4


def test_first_start_reads_back_a_duration(tmp_path: Path) -> None:
    hour = 3600 * 1_000_000
    start = int((time.time() - 9.5 * 3600) * 1_000_000)
    write_journal(
        tmp_path / "journal", [entry(f"line {i}") for i in range(10)], start_usec=start, step_usec=hour
    )
    collector = make_collector(tmp_path, tmp_path / "journal", read_back=6 * 3600.0)
    assert total(scrape(collector), "jada_journal_entries_total") == 6


def test_capped_labels_overflow_to_other_and_stay_capped_after_a_restart(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(
        "rules:\n  - name: deploys\n    metric: jada_deploys_total\n"
        "    regex: '^deploy (?P<service>\\w+)'\n"
        "    labels:\n      service: {capture: service, max_values: 2}\n"
    )
    journal_dir = tmp_path / "journal"
    write_journal(journal_dir, [entry(f"deploy {s}") for s in ["web", "api", "db", "web"]], "first")
    first = make_collector(tmp_path, journal_dir, rules_file=rules_file)
    scrape(first)
    first.close()
    write_journal(journal_dir, [entry("deploy cache"), entry("deploy api")], "second", START_USEC + 10**9)
    samples = scrape(make_collector(tmp_path, journal_dir, rules_file=rules_file))
    assert value(samples, "jada_deploys_total", service="web") == 2
    assert value(samples, "jada_deploys_total", service="api") == 2
    assert value(samples, "jada_deploys_total", service="other") == 2
    assert value(samples, "jada_journal_label_overflow_total", rule="deploys") == 2


def test_a_missing_journal_directory_fails_the_scrape_with_its_name(tmp_path: Path) -> None:
    collector = make_collector(tmp_path, tmp_path / "nowhere")
    with pytest.raises(JournalError, match="nowhere does not exist"):
        list(collector.collect())


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switches the effective uid to nobody and back")


@pytest.fixture
def shared() -> Iterator[Path]:
    """Yield a directory the user nobody can enter, unlike tmp_path; remove it after."""
    directory = Path(tempfile.mkdtemp(prefix="jada-journal-"))
    try:
        directory.chmod(0o755)
        yield directory
    finally:
        shutil.rmtree(directory)


@contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with the effective uid of nobody, then switch back to root."""
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@needs_root
def test_an_unreadable_journal_directory_fails_the_scrape_naming_it(tmp_path: Path, shared: Path) -> None:
    journal_dir = tmp_path / "journal"
    write_journal(journal_dir, SEED_LINES)
    journal_dir.chmod(0o700)
    collector = JournalCollector(load_rule_set(None), state_file=shared / "s.json", directory=journal_dir)
    with as_nobody(), pytest.raises(JournalError, match=f"journal directory {journal_dir} is not readable"):
        list(collector.collect())


@needs_root
def test_an_unreadable_journal_file_fails_the_scrape_instead_of_looking_quiet(shared: Path) -> None:
    path = write_journal(shared / "journal", SEED_LINES)
    (shared / "journal").chmod(0o755)
    path.chmod(0o600)
    collector = JournalCollector(
        load_rule_set(None), state_file=shared / "s.json", directory=shared / "journal"
    )
    with as_nobody(), pytest.raises(JournalError, match=f"{path} is not readable by this user"):
        list(collector.collect())


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_have_production_defaults() -> None:
    args = parse([])
    collector = from_args(args)
    assert collector.name == "journal"
    assert args.journal_match is None
    assert str(args.journal_state_file) == "/var/lib/jada-exporter/journal-state.json"
    assert args.journal_read_back == "boot"


def test_flags_parse_matches_durations_and_budget() -> None:
    args = parse(
        [
            "--journal.match=_SYSTEMD_UNIT=a.service",
            "--journal.match=_SYSTEMD_UNIT=b.service",
            "--journal.read-back=6h",
            "--journal.scrape-budget-seconds=0.25",
        ]
    )
    assert args.journal_match == ["_SYSTEMD_UNIT=a.service", "_SYSTEMD_UNIT=b.service"]
    assert args.journal_read_back == 6 * 3600
    assert args.journal_scrape_budget_seconds == 0.25


@pytest.mark.parametrize(
    "argv",
    [["--journal.match=unit=jada"], ["--journal.read-back=yesterday"], ["--journal.scrape-budget-seconds=0"]],
)
def test_bad_flags_exit_2_with_the_fix(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        parse(argv)
    assert raised.value.code == 2
    assert argv[0].split("=", 1)[0] in capsys.readouterr().err


def test_a_broken_rules_file_is_a_rules_error_naming_file_and_rule(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(
        "rules:\n  - name: deploys\n    metric: jada_deploys_total\n    regex: '(?P<svc>x'\n"
    )
    with pytest.raises(RulesError, match=f"{rules_file}: rule 'deploys': regex does not compile"):
        from_args(parse([f"--rules.file={rules_file}"]))


def test_structured_events_are_found_through_the_index_with_or_groups_too(tmp_path: Path) -> None:
    write_journal(
        tmp_path / "journal",
        [
            event(
                "[port-sheet] token error: HTTP 401 x",
                "token_error",
                component="port-sheet",
                status_code="401",
            ),
            event(
                "[port-sheet] token error: HTTP 403 x",
                "token_error",
                component="port-sheet",
                status_code="403",
            ),
            entry("[port-sheet] token error: HTTP 500 x", unit="cron.service"),
            {
                **event(
                    "[port-sheet] token error: HTTP 502 x", "token_error", component="jobs", status_code="502"
                ),
                "_SYSTEMD_UNIT": "jobs.service",
            },
        ],
    )
    matches = [DEFAULT_MATCH, "+", "_SYSTEMD_UNIT=jobs.service"]
    samples = scrape(make_collector(tmp_path, tmp_path / "journal", matches=matches))
    assert value(samples, "jada_journal_token_errors_total", component="port-sheet", status_code="401") == 1
    assert value(samples, "jada_journal_token_errors_total", component="port-sheet", status_code="403") == 1
    assert value(samples, "jada_journal_token_errors_total", component="jobs", status_code="502") == 1
    assert total(samples, "jada_journal_token_errors_total") == 3


def test_a_structured_last_entry_is_not_counted_again_after_a_restart(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    token = event(
        "[port-sheet] token error: HTTP 400 x", "token_error", component="port-sheet", status_code="400"
    )
    write_journal(journal_dir, [entry("line"), token], "first")
    first = make_collector(tmp_path, journal_dir)
    scrape(first)
    first.close()
    write_journal(journal_dir, [entry("line"), token], "second", START_USEC + 10**9)
    samples = scrape(make_collector(tmp_path, journal_dir))
    assert value(samples, "jada_journal_token_errors_total", component="port-sheet", status_code="400") == 2
    assert total(samples, "jada_journal_entries_total") == 4


def test_counts_of_a_metric_no_rule_makes_any_more_are_dropped_on_load(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    write_journal(journal_dir, SEED_LINES)
    state_file = tmp_path / "state" / "journal-state.json"
    state.save(state_file, state.JournalState(counters={"jada_deploys_total": {("web",): 4}}))
    samples = scrape(make_collector(tmp_path, journal_dir))
    assert not any(name == "jada_deploys_total" for name, _ in samples)
    assert "jada_deploys_total" not in state.load(state_file).counters  # type: ignore[union-attr]


def test_the_exposition_with_user_rules_passes_promtool(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(
        "rules:\n  - name: deploys\n    metric: jada_deploys_total\n    help: Deploys by service.\n"
        "    regex: '^deploy (?P<service>\\w+)'\n"
        "    labels:\n      service: {capture: service, max_values: 2}\n"
    )
    write_journal(tmp_path / "journal", [*SEED_LINES, entry("deploy web"), entry(b"\xff deploy")])
    registry = CollectorRegistry()
    registry.register(make_collector(tmp_path, tmp_path / "journal", rules_file=rules_file))
    text = generate_latest(registry)
    assert b'jada_deploys_total{service="web"} 1.0' in text
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_concurrent_scrapes_count_every_entry_once(tmp_path: Path) -> None:
    write_journal(tmp_path / "journal", [entry(f"[port-sheet] sync failed at {i}") for i in range(5000)])
    collector = make_collector(tmp_path, tmp_path / "journal", budget_seconds=1e-9)
    errors: list[BaseException] = []

    def scrape_until_caught_up() -> None:
        try:
            while value(scrape(collector), "jada_journal_lag_seconds") != 0:
                pass
        except BaseException as exc:  # the main thread asserts there were none
            errors.append(exc)

    threads = [threading.Thread(target=scrape_until_caught_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    samples = scrape(collector)
    assert value(samples, "jada_journal_sync_failures_total", component="port-sheet") == 5000
    assert total(samples, "jada_journal_entries_total") == 5000
