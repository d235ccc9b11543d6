"""deploy/systemd/jada-agent.service: valid, Type=notify with a watchdog, hardened, graceful stop."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import config
from orchestrator.cli import build_parser

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "systemd" / "jada-agent.service"
INSTALLED_BINARY = "/opt/jada-agent/.venv/bin/jada-agent"
MAX_EXPOSURE = 2.0

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="no systemd-analyze"
)


def service() -> dict[str, str]:
    """Return the [Service] section's settings (the last one wins, as in systemd)."""
    text = UNIT.read_text().replace("\\\n", " ")
    body = text.split("[Service]\n", 1)[1].split("\n[", 1)[0]
    pairs = (line.partition("=") for line in body.splitlines() if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, _, value in pairs}


def local_copy(tmp_path: Path) -> Path:
    """Copy the unit with ExecStart pointing at this checkout's jada-agent."""
    binary = Path(sys.executable).with_name("jada-agent")
    assert binary.exists(), "the project is installed editable into the venv"
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(INSTALLED_BINARY, str(binary)))
    return copy


@needs_systemd_analyze
def test_the_unit_verifies_cleanly(tmp_path: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(local_copy(tmp_path))], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@needs_systemd_analyze
def test_the_unit_is_hardened_to_an_exposure_of_two_or_less(tmp_path: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(local_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout


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
