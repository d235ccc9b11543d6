"""deploy/systemd/jada-exporter.service: valid, hardened, allowed to read the journal."""

from __future__ import annotations

import shlex
from pathlib import Path

from unitfiles import UNITS, directives, exposure, local_copy, needs_systemd_analyze, verify

from exporter.cli import build_parser

UNIT = UNITS / "jada-exporter.service"
INSTALLED_BINARY = "/opt/jada-agent/.venv/bin/jada-exporter"
MAX_EXPOSURE = 2.0


@needs_systemd_analyze
def test_the_unit_verifies(tmp_path: Path) -> None:
    done = verify(local_copy(UNIT, INSTALLED_BINARY, tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@needs_systemd_analyze
def test_the_unit_is_hardened_to_an_exposure_of_two_or_less(tmp_path: Path) -> None:
    level, output = exposure(local_copy(UNIT, INSTALLED_BINARY, tmp_path))
    assert level is not None, output
    assert level <= MAX_EXPOSURE, output


def test_the_unit_may_read_the_journal_and_keep_its_state() -> None:
    service = dict(directives(UNIT, "Service"))
    assert "systemd-journal" in service["SupplementaryGroups"].split()
    assert service["StateDirectory"] == "jada-exporter"
    assert service["DynamicUser"] == "yes"


def test_the_units_command_line_is_one_the_exporter_accepts() -> None:
    command = shlex.split(dict(directives(UNIT, "Service"))["ExecStart"])
    assert command[0] == INSTALLED_BINARY
    args = build_parser().parse_args(command[1:])
    assert args.listen_address.startswith("127.0.0.1:")
