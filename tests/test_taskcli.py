"""`jada-agent task ...` and `jada-agent status`, and how they treat bad input: message, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from freezegun import freeze_time
from helpers_daemon import load, write_config

from orchestrator import cli
from orchestrator.status import format_age
from orchestrator.store import Store

Capture = pytest.CaptureFixture[str]


def jada(capsys: Capture, config: Path, *args: str) -> tuple[int, str, str]:
    """Run the command line in-process and return (exit code, stdout, stderr)."""
    try:
        code = cli.main(["--config", str(config), *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def test_add_list_show(capsys: Capture, config: Path) -> None:
    assert jada(
        capsys, config, "task", "add", "Refactor", "refactor the page generator", "--priority", "3"
    ) == (
        0,
        "task 1 queued\n",
        "",
    )
    assert jada(capsys, config, "task", "add", "Deploy", "--depends-on", "1")[1] == "task 2 queued\n"
    code, out, _ = jada(capsys, config, "task", "list")
    assert (code, out.splitlines()) == (
        0,
        [
            "    1  queued     p3   tries 0  Refactor",
            "    2  queued     p0   tries 0 after 1  Deploy",
        ],
    )
    code, out, _ = jada(capsys, config, "task", "show", "2")
    assert code == 0
    assert "task 2: Deploy\nstate: queued\n" in out
    assert "depends on: task 1\n" in out
    assert "prompt:\n  Deploy\n" in out


def test_list_filters_by_state(capsys: Capture, config: Path) -> None:
    jada(capsys, config, "task", "add", "a")
    jada(capsys, config, "task", "add", "b")
    jada(capsys, config, "task", "cancel", "1")
    assert jada(capsys, config, "task", "list", "--state", "cancelled")[1].split()[:2] == ["1", "cancelled"]


def test_answer_requeues_the_parent(capsys: Capture, config: Path) -> None:
    with Store(load(config).store_path) as store:
        parent = store.add_task("E-signature", "x")
        question = store.request_human(parent, "Which provider?")
        store.set_task_state(parent, "done")
        store.set_task_state(parent, "queued")
    code, out, _ = jada(capsys, config, "task", "answer", str(question), "DocuSeal")
    assert (code, out) == (0, f"task {question} answered; task {parent} re-queued\n")
    assert "DocuSeal" in jada(capsys, config, "task", "show", str(parent))[1]


def test_unknown_task_id_is_exit_2_with_the_id(capsys: Capture, config: Path) -> None:
    for action in (["show", "42"], ["cancel", "42"], ["answer", "42", "yes"]):
        code, out, err = jada(capsys, config, "task", *action)
        assert (code, out) == (2, "")
        assert err == "jada-agent: no task with id 42; `jada-agent task list` shows the ids\n"


def test_answering_a_task_that_is_not_waiting_is_exit_2(capsys: Capture, config: Path) -> None:
    jada(capsys, config, "task", "add", "a")
    code, _, err = jada(capsys, config, "task", "answer", "1", "yes")
    assert code == 2
    assert "task 1 is queued, not needs_you" in err


def test_dependency_cycle_is_exit_2_and_adds_nothing(capsys: Capture, config: Path) -> None:
    jada(capsys, config, "task", "add", "a")
    jada(capsys, config, "task", "add", "b", "--depends-on", "1")
    code, out, err = jada(capsys, config, "task", "add", "c", "--depends-on", "2", "--blocks", "1")
    assert (code, out) == (2, "")
    assert "makes a dependency cycle (1 -> 3 -> 2 -> 1)" in err
    assert len(jada(capsys, config, "task", "list")[1].splitlines()) == 2


def test_malformed_config_is_exit_2_naming_file_and_key(capsys: Capture, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[orchestrator]\ndaily_sessions = -1\n")
    for command in (["task", "list"], ["status"], ["run"]):
        code, _, err = jada(capsys, bad, *command)
        assert code == 2
        assert f"{bad}: orchestrator.daily_sessions: must be greater than 0, got -1" in err


def test_store_that_is_not_a_database_is_exit_2_and_untouched(capsys: Capture, config: Path) -> None:
    store_path = load(config).store_path
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(b"port,service\n8080,crew-pages\n")
    for command in (["task", "add", "x"], ["task", "list"], ["status"], ["run"]):
        code, _, err = jada(capsys, config, *command)
        assert code == 2
        assert f"{store_path} is not an SQLite database; it was left untouched" in err
    assert store_path.read_bytes() == b"port,service\n8080,crew-pages\n"
    assert sorted(p.name for p in store_path.parent.iterdir()) == ["jada-agent.db"]


def test_status_summarizes_sessions_queue_and_needs_you(capsys: Capture, config: Path) -> None:
    with freeze_time("2026-05-13 00:00:00"), Store(load(config).store_path) as store:
        refactor = store.add_task("Refactor", "x")
        session = store.start_session(refactor, day_limit=5)
        store.update_session_progress(session, 30, {})
        store.finish_session(session, "max_turns", 1, 30)
        store.release_task(refactor, "queued")
        store.request_human(store.add_task("E-signature", "y"), "Which provider?")
    with freeze_time("2026-05-13 14:38:00"):
        code, out, _ = jada(capsys, config, "status")
    assert code == 0
    assert out == (
        "Sessions today (2026-05-13 UTC): 1/5\n"
        "  session 1 at 00:00: task 1 (Refactor), 30/30 turns, max_turns (exit code 1)\n"
        "Queue: queued 2, running 0, needs_you 1, done 0, failed 0, cancelled 0\n"
        "Needs you:\n"
        "  task 3 (from task 2), waiting 14h 38m: Which provider?\n"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (720, "12m"), (3 * 3600 + 5 * 60, "3h 05m"), (2 * 86400 + 4 * 3600 + 59, "2d 4h")],
)
def test_ages_read_like_a_person_would_say_them(seconds: float, text: str) -> None:
    assert format_age(seconds) == text
