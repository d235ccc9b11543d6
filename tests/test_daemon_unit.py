"""deploy/systemd/jada-agent.service: Type=notify with a watchdog, graceful stop, a command it accepts.

tests/test_systemd_units.py checks that it verifies and is hardened.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from unitfiles import INSTALLED_BINARIES, UNITS, directives

from orchestrator import config
from orchestrator.cli import build_parser

UNIT = UNITS / "jada-agent.service"
INSTALLED_BINARY = INSTALLED_BINARIES[UNIT.name]


def service() -> dict[str, str]:
    """Return the [Service] section's settings (the last one wins, as in systemd)."""
    return dict(directives(UNIT, "Service"))


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
