"""deploy/systemd/jada-agent.service: valid, Type=notify with a watchdog, hardened, graceful stop."""

from __future__ import annotations

import shlex
from pathlib import Path

from unitfiles import UNITS, directives, exposure, local_copy, needs_systemd_analyze, verify

from orchestrator import config
from orchestrator.cli import build_parser

UNIT = UNITS / "jada-agent.service"
INSTALLED_BINARY = "/opt/jada-agent/.venv/bin/jada-agent"
MAX_EXPOSURE = 2.0


def service() -> dict[str, str]:
    """Return the [Service] section's settings (the last one wins, as in systemd)."""
    return dict(directives(UNIT, "Service"))


@needs_systemd_analyze
def test_the_unit_verifies_cleanly(tmp_path: Path) -> None:
    done = verify(local_copy(UNIT, INSTALLED_BINARY, tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@needs_systemd_analyze
def test_the_unit_is_hardened_to_an_exposure_of_two_or_less(tmp_path: Path) -> None:
    level, output = exposure(local_copy(UNIT, INSTALLED_BINARY, tmp_path))
    assert level is not None, output
    assert level <= MAX_EXPOSURE, output


def test_the_unit_is_type_notify_with_a_watchdog() -> None:
    settings = service()
    assert (settings["Type"], settings["NotifyAccess"]) == ("notify", "main")
    assert settings["WatchdogSec"] == "60s"


def test_stop_gives_the_session_its_grace_period_before_systemd_kills() -> None:
    settings = service()
    # Only the daemon gets SIGTERM; it stops the session child itself after the grace period.
    assert settings["KillMode"] == "mixed"
    stop_timeout = float(settings["TimeoutStopSec"].removesuffix("s"))
    assert stop_timeout > config.Config(path=Path("x")).shutdown_grace_seconds


def test_the_units_command_line_is_one_jada_agent_accepts() -> None:
    command = shlex.split(service()["ExecStart"])
    assert command[0] == INSTALLED_BINARY
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.config) == ("run", "/etc/jada-agent/config.toml")
