"""Test helpers for the daemon: configs, the fake session child, the daemon in-process or run, polling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from orchestrator import config
from orchestrator.daemon import Daemon, Notifier
from orchestrator.metrics import Metrics
from orchestrator.store import Store

FAKE_SESSION = Path(__file__).with_name("helpers_fake_session.py")
FAKE_SESSION_COMMAND = f"{sys.executable} {FAKE_SESSION}"
T = TypeVar("T")


def write_config(directory: Path, **orchestrator: object) -> Path:
    """Write a config with a state_dir under ``directory`` and the given [orchestrator] keys."""
    settings: dict[str, object] = {"state_dir": str(directory / "state"), "poll_interval_seconds": 0.2}
    settings.update(orchestrator)
    lines = ["[orchestrator]"]
    for key, value in settings.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def load(path: Path) -> config.Config:
    """Load a test config with no environment leaking in."""
    return config.load(path, environ={})


@contextmanager
def daemon_for(cfg: config.Config) -> Iterator[Daemon]:
    """Yield an in-process Daemon over the config's store, with no systemd notifier; close the store after."""
    store = Store(cfg.store_path)
    metrics = Metrics(cfg.max_turns, cfg.daily_sessions, snapshot=store.snapshot, models=(cfg.model,))
    try:
        yield Daemon(cfg, store, metrics, notifier=Notifier(environ={}))
    finally:
        store.close()


def wait_for(check: Callable[[], T], what: str, timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http_get(url: str) -> tuple[int, str]:
    """GET ``url`` and return (status, body), errors included; (0, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


class DaemonProcess:
    """`jada-agent run` as a real process with the fake session child; stopped on exit."""

    def __init__(
        self,
        config_path: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        session_command: str | None = FAKE_SESSION_COMMAND,
    ) -> None:
        """Start the daemon; ``session_command=None`` runs the real session child."""
        skipped = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JADA_SESSION_COMMAND")
        environ = {k: v for k, v in os.environ.items() if k not in skipped}
        if session_command is not None:
            environ["JADA_SESSION_COMMAND"] = session_command
        # Tests read the daemon's log lines from its stderr, even on a host where journald runs.
        environ["JADA_JOURNAL_SOCKET"] = str(log_path.with_suffix(".no-journal"))
        environ.update(env or {})
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--config", str(config_path), "run"],
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        """Return what the daemon logged so far."""
        return self.log_path.read_text()

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the daemon."""
        self.process.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the daemon to exit and return its exit code."""
        return self.process.wait(timeout)

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._log.close()


def pid_alive(pid: int) -> bool:
    """Tell whether a process exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
