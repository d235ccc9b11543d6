"""deploy/systemd/jada-exporter.service: allowed to read the journal, a command it accepts.

tests/test_systemd_units.py checks that it verifies and is hardened.
"""

from __future__ import annotations

import shlex

from unitfiles import INSTALLED_BINARIES, UNITS, directives

from exporter.cli import build_parser

UNIT = UNITS / "jada-exporter.service"
INSTALLED_BINARY = INSTALLED_BINARIES[UNIT.name]


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
