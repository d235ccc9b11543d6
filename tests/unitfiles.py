"""Read and check the systemd unit files under deploy/systemd with systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
# Where each unit's ExecStart expects the program, installed by deploy/.
INSTALLED_BINARIES = {
    "jada-agent.service": "/opt/jada-agent/.venv/bin/jada-agent",
    "jada-exporter.service": "/opt/jada-agent/.venv/bin/jada-exporter",
}

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="no systemd-analyze"
)


def directives(unit: Path, section: str) -> list[tuple[str, str]]:
    """Return a unit section's (key, value) pairs, continuation lines joined."""
    text = unit.read_text().replace("\\\n", " ")
    body = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
    return [
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in body.splitlines())
        if key.strip() and not key.startswith("#")
    ]


def local_copy(unit: Path, installed_binary: str, tmp_path: Path) -> Path:
    """Copy the unit with ExecStart pointing at this checkout's copy of the installed binary."""
    binary = Path(sys.executable).with_name(Path(installed_binary).name)
    assert binary.exists(), "the project is installed editable into the venv"
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(installed_binary, str(binary)))
    return copy


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    """Run `systemd-analyze verify` on the unit."""
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )


def exposure(unit: Path) -> tuple[float | None, str]:
    """Return the unit's overall exposure level from `systemd-analyze security`, and the tool's output."""
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    return (float(found.group(1)) if found else None), done.stdout + done.stderr
