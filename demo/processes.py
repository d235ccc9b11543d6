"""Start the stack's child processes and stop every one of them, whatever happens.

Each child runs in its own session (so its own process group) with its output in a log
file. Stopping sends SIGTERM to the whole group, waits a grace period, then SIGKILLs what
is left, so helpers a child spawned (Chromium's, a session's tools) go too. Children also
get SIGTERM from the kernel if this process dies without cleaning up.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

import psutil

DEFAULT_GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1
# Looked up once here: between fork and exec the child must not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


class StackError(Exception):
    """Something the stack needs is missing or broken; the message says what and how to fix it."""


class PortTaken(StackError):
    """A port the stack needs is already bound by another process."""

    def __init__(self, port: int, owner: str | None, pid: int | None, hint: str) -> None:
        self.port = port
        self.owner = owner
        self.pid = pid
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        who = f"{self.owner} (pid {self.pid})" if self.pid is not None else "another process"
        return f"port {self.port} is taken by {who}; {self.hint}"


class ChildFailed(StackError):
    """A child exited or never became ready; the message ends with its log's tail."""


@dataclass
class Child:
    """One started process: its name, handle and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """Return the child's pid, which is also its process group id."""
        return self.popen.pid

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the child's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port the kernel just handed out as free on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def allocate_ports(names: Sequence[str], base: int | None = None) -> dict[str, int]:
    """Return a port per name: ``base``, ``base + 1``, ... when given (each checked free), else free ones."""
    if base is not None:
        ports = {name: base + offset for offset, name in enumerate(names)}
        for port in ports.values():
            check_port_free(port)
        return ports
    # Hold every socket until all are bound, so the kernel cannot hand out one port twice.
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in names]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return {name: int(sock.getsockname()[1]) for name, sock in zip(names, sockets, strict=True)}


def port_listener(port: int) -> tuple[str, int] | None:
    """Return (process name, pid) of whatever listens on TCP ``port``, if it can be found."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                return psutil.Process(conn.pid).name(), conn.pid
            except psutil.Error:
                return "?", conn.pid
    return None


def check_port_free(port: int, host: str = "127.0.0.1", hint: str = "stop it or pass --port-base") -> None:
    """Raise PortTaken, naming the process that holds it, when ``port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers set it, so a port in TIME_WAIT from our last run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            owner = port_listener(port)
            raise PortTaken(port, *(owner or (None, None)), hint=hint) from None


def group_members(pgid: int) -> list[int]:
    """Return the live (not zombie) pids in process group ``pgid``."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def _die_with_parent() -> None:
    """Ask the kernel to SIGTERM this child when the thread that started it dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Start children and stop them all on exit, Ctrl-C or SIGTERM.

    Use as a context manager; together with ``signals_unwind()`` a SIGTERM unwinds the
    ``with`` block like Ctrl-C does, so ``__exit__`` stops every child.
    """

    def __init__(self, log_dir: Path, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        self.log_dir = Path(log_dir)
        self.grace_seconds = grace_seconds
        self.children: list[Child] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start ``argv`` in a new process group with stdout and stderr in ``<log_dir>/<name>.log``."""
        # The kernel's parent-death signal follows the starting thread: start from the main one.
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise ChildFailed(f"cannot start {name}: {argv[0]}: {exc.strerror}") from None
        child = Child(name, popen, log_path)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> int | None:
        """Stop one child and its process group; return its exit code."""
        self._stop_groups([child])
        self.children.remove(child)
        return child.popen.returncode

    def stop_all(self) -> None:
        """Stop every child, the most recently started first in the signal order."""
        children, self.children = list(reversed(self.children)), []
        self._stop_groups(children)

    def _stop_groups(self, children: list[Child]) -> None:
        for child in children:
            _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        pending = list(children)
        while pending and time.monotonic() < deadline:
            for child in list(pending):
                child.popen.poll()
                if child.popen.returncode is not None and not group_members(child.pid):
                    pending.remove(child)
            if pending:
                time.sleep(0.05)
        for child in pending:
            _signal_group(child.pid, signal.SIGKILL)
        for child in children:
            child.popen.wait()
            # A grandchild that ignored SIGTERM may outlive the leader; the group id still reaches it.
            if group_members(child.pid):
                _signal_group(child.pid, signal.SIGKILL)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


class Terminated(SystemExit):
    """Raised in the main thread when SIGTERM arrives, so ``with`` blocks unwind."""


@contextmanager
def signals_unwind() -> Iterator[None]:
    """Turn SIGTERM into a Terminated exception (Ctrl-C already raises KeyboardInterrupt)."""

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_for_http(url: str, deadline: float, child: Child | None = None, poll_seconds: float = 0.1) -> None:
    """Poll ``url`` until it answers 2xx before ``deadline`` (time.monotonic()); else raise ChildFailed."""
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if child is not None and child.popen.poll() is not None:
            raise ChildFailed(
                f"{child.name} exited with code {child.popen.returncode} before {url} answered; "
                f"last lines of {child.log_path}:\n{child.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        time.sleep(poll_seconds)
    where = f"; last lines of {child.log_path}:\n{child.log_tail()}" if child is not None else ""
    raise ChildFailed(f"{url} did not answer in time ({last_error}){where}")
