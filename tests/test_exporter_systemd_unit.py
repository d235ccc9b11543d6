"""deploy/systemd/jada-exporter.service: valid, hardened, allowed to read the journal."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.cli import build_parser

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "systemd" / "jada-exporter.service"
INSTALLED_BINARY = "/opt/jada-agent/.venv/bin/jada-exporter"
MAX_EXPOSURE = 2.0

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="no systemd-analyze"
)


def directives(section: str) -> list[tuple[str, str]]:
    """Return a unit section's (key, value) pairs, continuation lines joined."""
    text = UNIT.read_text().replace("\\\n", " ")
    body = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
    return [
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in body.splitlines())
        if key.strip() and not key.startswith("#")
    ]


def local_copy(tmp_path: Path) -> Path:
    """Copy the unit with ExecStart pointing at this checkout's jada-exporter."""
    binary = Path(sys.executable).with_name("jada-exporter")
    assert binary.exists(), "the project is installed editable into the venv"
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(INSTALLED_BINARY, str(binary)))
    return copy


@needs_systemd_analyze
def test_the_unit_verifies(tmp_path: Path) -> None:
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


def test_the_unit_may_read_the_journal_and_keep_its_state() -> None:
    service = dict(directives("Service"))
    assert "systemd-journal" in service["SupplementaryGroups"].split()
    assert service["StateDirectory"] == "jada-exporter"
    assert service["DynamicUser"] == "yes"


def test_the_units_command_line_is_one_the_exporter_accepts() -> None:
    command = shlex.split(dict(directives("Service"))["ExecStart"])
    assert command[0] == INSTALLED_BINARY
    args = build_parser().parse_args(command[1:])
    assert args.listen_address.startswith("127.0.0.1:")
