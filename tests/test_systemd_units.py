"""Every unit under deploy/systemd: valid for systemd-analyze and hardened to an exposure of 2 or less."""

from __future__ import annotations

from pathlib import Path

import pytest
from unitfiles import INSTALLED_BINARIES, UNITS, exposure, local_copy, needs_systemd_analyze, verify

MAX_EXPOSURE = 2.0


@needs_systemd_analyze
@pytest.mark.parametrize("name", sorted(INSTALLED_BINARIES))
def test_the_unit_verifies_cleanly(name: str, tmp_path: Path) -> None:
    done = verify(local_copy(UNITS / name, INSTALLED_BINARIES[name], tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@needs_systemd_analyze
@pytest.mark.parametrize("name", sorted(INSTALLED_BINARIES))
def test_the_unit_is_hardened_to_an_exposure_of_two_or_less(name: str, tmp_path: Path) -> None:
    level, output = exposure(local_copy(UNITS / name, INSTALLED_BINARIES[name], tmp_path))
    assert level is not None, output
    assert level <= MAX_EXPOSURE, output
