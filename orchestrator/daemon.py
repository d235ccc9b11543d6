"""`jada-agent run`: the daemon loop that runs agent sessions from the queue under budget.

Each session is a child process (docs/CONTRACTS.md) so a hung or leaking session is killed
without taking the daemon down. The daemon spends the day's budget before starting the
child, supervises it (wall-clock limit, events on a pipe, the systemd watchdog), records how
it ended and decides the task's next state. It imports neither ``anthropic`` nor the Google
libraries: they cost memory the host does not have and live only in the children.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator import cli, config, log
from orchestrator.log import logger
from orchestrator.metrics import LLM_OUTCOMES, Metrics
from orchestrator.scheduler import Scheduler as JobScheduler
from orchestrator.status import gather_config
from orchestrator.store import TOKEN_TYPES, Snapshot, Store, StoreError, Task
from orchestrator.web import StatusServer

# A command prefix replacing `python -m orchestrator` for the session child (tests use a fake).
SESSION_COMMAND_ENV = "JADA_SESSION_COMMAND"
EXIT_REASON_BY_CODE = {0: "completed", 1: "max_turns", 2: "error"}
# How often the supervision loop wakes to check the child's clock, the watchdog and SIGTERM.
TICK_SECONDS = 0.25
MAX_EVENT_LINE = 1 << 20


class Scheduler(Protocol):
    """What the daemon needs from the scheduled-jobs runner."""

    def tick(self, now: float) -> None:
        """Start whatever jobs are due at ``now``."""

    def shutdown(self) -> None:
        """Stop running jobs; called once when the daemon stops."""


@dataclass(frozen=True)
class Decision:
    """What happens to a task after one of its sessions."""

    state: str
    reason: str | None


@dataclass(frozen=True)
class SessionOutcome:
    """How a session ended, as the daemon recorded it."""

    session_id: int
    task_id: int
    reason: str
    exit_code: int | None
    turns: int
    summary: str | None
    last_text: str | None


def exit_reason(returncode: int) -> str:
    """Map a session child's exit code to its exit reason (anything unexpected is an error)."""
    return EXIT_REASON_BY_CODE.get(returncode, "error")


def decide(reason: str, attempts: int, max_attempts: int, max_turns: int) -> Decision:
    """Decide a task's state after a session that ended with ``reason``."""
    if reason == "completed":
        return Decision("done", None)
    if reason == "interrupted":
        # Not the task's fault: the daemon stopped or crashed under it.
        return Decision("queued", None)
    if attempts < max_attempts:
        return Decision("queued", None)
    if reason == "max_turns":
        return Decision(
            "needs_you",
            f"hit the {max_turns}-turn limit in {attempts} sessions (max_attempts {max_attempts}); "
            "split it into smaller tasks or answer with guidance",
        )
    return Decision("failed", f"its last {attempts} sessions ended with {reason}")


def progress_note(outcome: SessionOutcome) -> str | None:
    """Say what the next session needs to know about this one, for the task's progress."""
    parts = []
    if outcome.summary:
        parts.append(f"summary: {outcome.summary}")
    if outcome.last_text and outcome.last_text != outcome.summary:
        parts.append(f"last words: {outcome.last_text}")
    if outcome.reason == "completed":
        return f"Session {outcome.session_id} completed; " + "; ".join(parts) if parts else None
    head = f"Session {outcome.session_id} ended with {outcome.reason} after {outcome.turns} turns"
    return "; ".join([head, *parts])


def parse_event(line: bytes) -> dict[str, Any] | None:
    """Parse one line of a session child's event stream; None when it is malformed."""
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict):
        return None
    kind = event.get("event")
    if kind == "turn":
        return event if _count(event.get("turns")) else None
    if kind == "result":
        ok = (
            event.get("reason") in EXIT_REASON_BY_CODE.values()
            and _count(event.get("turns"))
            and all(isinstance(event.get(k), str | None) for k in ("summary", "last_text"))
        )
        return event if ok else None
    if kind == "llm_request":
        usage = event.get("usage", {})
        ok = (
            isinstance(event.get("model"), str)
            and 0 < len(event["model"]) <= 100
            and event.get("outcome") in LLM_OUTCOMES
            and isinstance(event.get("duration_seconds"), int | float)
            and event["duration_seconds"] >= 0
            and isinstance(usage, dict)
            and all(k in TOKEN_TYPES and _count(v) for k, v in usage.items())
        )
        return event if ok else None
    return None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def status_line(snapshot: Snapshot, daily_limit: int, activity: str) -> str:
    """Summarize budget, queue and activity in the one line systemd shows as STATUS."""
    q = snapshot.tasks_by_state
    return (
        f"sessions {snapshot.sessions_today}/{daily_limit} today; queue {q['queued']} queued, "
        f"{q['running']} running, {q['needs_you']} needs you; {activity}"
    )


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Return how often to send WATCHDOG=1 (half of WATCHDOG_USEC), or None when not asked to."""
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (owner and owner != str(pid)):
        return None
    return int(usec) / 2_000_000


class Notifier:
    """Talk to systemd over NOTIFY_SOCKET: READY, WATCHDOG, STATUS, STOPPING."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        from systemd import daemon

        self._notify = daemon.notify
        environ = os.environ if environ is None else environ
        self.watchdog_every = watchdog_interval(environ, os.getpid())
        self._next_watchdog = 0.0
        self._last_status = ""

    def ready(self, status: str) -> None:
        """Tell systemd that start-up is over."""
        self._last_status = status
        self._notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        """Update the one-line status when it changed."""
        if status != self._last_status:
            self._last_status = status
            self._notify(f"STATUS={status}")

    def watchdog(self) -> None:
        """Pet the watchdog when half its timeout has passed since the last time."""
        if self.watchdog_every is None:
            return
        now = time.monotonic()
        if now >= self._next_watchdog:
            self._notify("WATCHDOG=1")
            self._next_watchdog = now + self.watchdog_every

    def stopping(self) -> None:
        """Tell systemd that shutdown has begun."""
        self._notify("STOPPING=1\nSTATUS=stopping")


def session_command(cfg: config.Config, task_id: int, session_id: int, events_fd: int) -> list[str]:
    """Build the session child's command line (JADA_SESSION_COMMAND replaces the program)."""
    program = shlex.split(os.environ.get(SESSION_COMMAND_ENV, "")) or [sys.executable, "-m", "orchestrator"]
    command = [
        *program,
        "--config",
        str(cfg.path),
        "session",
        "run",
        str(task_id),
        "--session-id",
        str(session_id),
        "--events-fd",
        str(events_fd),
    ]
    # The child must not outlive a daemon killed with SIGKILL: it would keep working on a
    # task that the restarted daemon re-queues as interrupted.
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else command


class Daemon:
    """The loop: pick the next runnable task while budget is left, run its session, record it."""

    def __init__(
        self,
        cfg: config.Config,
        store: Store,
        metrics: Metrics,
        notifier: Notifier | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.metrics = metrics
        self.notifier = notifier or Notifier()
        self.scheduler = scheduler
        self.stopping = threading.Event()
        self.last_beat = time.monotonic()
        self._activity = "starting"
        self._idle_logged = ""

    def request_stop(self) -> None:
        """Stop taking work; a running session gets the grace period to finish its turn."""
        # Called from a signal handler: only set the flag; the loop logs when it notices.
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        """Stop gracefully on SIGTERM and SIGINT."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.request_stop())

    def health(self) -> tuple[bool, str]:
        """Tell /healthz whether the loop is alive and the store opens."""
        stalled = time.monotonic() - self.last_beat
        if stalled > max(30.0, 3 * self.cfg.poll_interval_seconds):
            return False, f"daemon loop stalled for {stalled:.0f}s"
        try:
            self.store.snapshot()
        except Exception as exc:
            return False, f"store unreadable: {exc}"
        return True, f"ok: {self._activity}"

    def run(self) -> int:
        """Recover, announce readiness, then loop until asked to stop; return the exit code."""
        self.recover()
        self.notifier.ready(self._status())
        log.event("[daemon] started", event="daemon_start")
        while not self.stopping.is_set():
            if self.run_once() != "session":
                self._wait(self.cfg.poll_interval_seconds)
        logger.info("[daemon] stopping: no new sessions")
        self.notifier.stopping()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        log.event("[daemon] stopped", event="daemon_stop")
        return 0

    def recover(self) -> list[int]:
        """Record sessions left running by a previous daemon as interrupted; re-queue their tasks."""
        recovered = []
        for session in self.store.running_sessions():
            outcome = SessionOutcome(
                session_id=session.id,
                task_id=session.task_id,
                reason="interrupted",
                exit_code=None,
                turns=session.turns,
                summary="found running when the daemon started",
                last_text=None,
            )
            self._record(outcome)
            recovered.append(session.id)
        return recovered

    def run_once(self) -> str:
        """Do one step of the loop: "session" when one ran, else "idle", "budget_spent" or "stopping"."""
        self._beat()
        if self.stopping.is_set():
            return "stopping"
        used = self.store.sessions_used_today()
        task = self.store.next_runnable_task()
        if task is None:
            return self._idle("idle", "[daemon] no runnable task; idle")
        if used >= self.cfg.daily_sessions:
            return self._idle(
                "budget_spent",
                f"[daemon] daily session budget spent ({used}/{self.cfg.daily_sessions}); "
                "waiting for 00:00 UTC",
            )
        try:
            session_id = self.store.start_session(task.id, self.cfg.daily_sessions)
        except StoreError as exc:
            # A person cancelled the task between choosing and starting it: choose again.
            logger.info("[daemon] task %s changed before its session started: %s", task.id, exc)
            return self.run_once()
        if session_id is None:
            return self._idle("budget_spent", "[daemon] daily session budget spent; waiting for 00:00 UTC")
        self._idle_logged = ""
        self.run_session(task, session_id)
        return "session"

    def _idle(self, kind: str, message: str) -> str:
        self._activity = "idle" if kind == "idle" else "daily budget spent, waiting for 00:00 UTC"
        # Log the change into idleness once, not every poll: an idle daemon stays quiet.
        if self._idle_logged != kind:
            log.event(message, event=f"daemon_{kind}")
            self._idle_logged = kind
        self._beat()
        return kind

    def run_session(self, task: Task, session_id: int) -> SessionOutcome:
        """Run the session child for ``task`` and record how it ended."""
        self.metrics.session_started()
        log.event(
            f"[session] task {task.id} session {session_id} started",
            event="session_start",
            task_id=task.id,
            session_id=session_id,
        )
        self._activity = f"running task {task.id} session {session_id}"
        read_fd, write_fd = os.pipe()
        try:
            child = subprocess.Popen(
                session_command(self.cfg, task.id, session_id, write_fd),
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            logger.error("[session] task %s session %s could not start: %s", task.id, session_id, exc)
            return self._record(SessionOutcome(session_id, task.id, "error", None, 0, str(exc), None))
        os.close(write_fd)
        try:
            outcome = self._supervise(child, read_fd, task.id, session_id)
        finally:
            os.close(read_fd)
        return self._record(outcome)

    def _supervise(
        self, child: subprocess.Popen[bytes], read_fd: int, task_id: int, session_id: int
    ) -> SessionOutcome:
        os.set_blocking(read_fd, False)
        started = time.monotonic()
        deadline = started + self.cfg.session_timeout_seconds
        grace_deadline: float | None = None
        turns_at_stop = 0
        turns = 0
        result: dict[str, Any] = {}
        killed: str | None = None
        buffer = b""
        eof = False
        while True:
            if not eof:
                ready, _, _ = select.select([read_fd], [], [], TICK_SECONDS)
                if ready:
                    chunk = _read_available(read_fd)
                    eof = chunk is None
                    buffer += chunk or b""
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(TICK_SECONDS)
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > MAX_EVENT_LINE:
                lines.append(buffer)
                buffer = b""
            for line in lines:
                turns = self._on_event(line, turns, result, task_id, session_id)
            if child.poll() is not None and (eof or killed):
                break
            self._beat()
            now = time.monotonic()
            if killed:
                continue
            if now >= deadline:
                killed = "timeout"
                logger.warning(
                    "[session] task %s session %s exceeded %ss of wall clock; killing it",
                    task_id,
                    session_id,
                    self.cfg.session_timeout_seconds,
                )
                _kill(child)
            elif self.stopping.is_set():
                if grace_deadline is None:
                    grace_deadline = now + self.cfg.shutdown_grace_seconds
                    turns_at_stop = turns
                    logger.info(
                        "[daemon] stopping: task %s session %s may finish its turn (grace %ss)",
                        task_id,
                        session_id,
                        self.cfg.shutdown_grace_seconds,
                    )
                # A finished turn is recorded by the child; stopping right after it loses nothing.
                if turns > turns_at_stop or now >= grace_deadline:
                    killed = "interrupted"
                    _kill(child)
        if buffer.strip():
            turns = self._on_event(buffer, turns, result, task_id, session_id)
        code = child.returncode
        recorded = self.store.get_session(session_id).turns
        return SessionOutcome(
            session_id=session_id,
            task_id=task_id,
            reason=killed or exit_reason(code),
            exit_code=None if killed else code,
            turns=max(turns, recorded, int(result.get("turns", 0))),
            summary=result.get("summary"),
            last_text=result.get("last_text"),
        )

    def _on_event(
        self, line: bytes, turns: int, result: dict[str, Any], task_id: int, session_id: int
    ) -> int:
        if not line.strip():
            return turns
        event = parse_event(line)
        if event is None:
            self.metrics.session_events_malformed.inc()
            logger.warning(
                "[session] task %s session %s sent a malformed event line (%d bytes); ignored",
                task_id,
                session_id,
                len(line),
            )
            return turns
        kind = event["event"]
        if kind == "llm_request":
            self.metrics.llm_request(
                event["model"], event["outcome"], float(event["duration_seconds"]), event.get("usage", {})
            )
        elif kind == "turn":
            turns = max(turns, event["turns"])
            self._activity = f"running task {task_id} session {session_id} (turn {turns})"
        else:
            result.update(event)
        return turns

    def _record(self, outcome: SessionOutcome) -> SessionOutcome:
        self.store.finish_session(
            outcome.session_id, outcome.reason, outcome.exit_code, outcome.turns, outcome.summary
        )
        self.metrics.session_exited(outcome.reason, outcome.turns)
        code = "killed" if outcome.exit_code is None else f"exit code {outcome.exit_code}"
        graceful = outcome.reason in ("completed", "max_turns")
        log.event(
            f"[session] task {outcome.task_id} session {outcome.session_id} exited: "
            f"{outcome.reason} after {outcome.turns} turns ({code})",
            logging.INFO if graceful else logging.WARNING,
            event="session_exit",
            task_id=outcome.task_id,
            session_id=outcome.session_id,
            exit_reason=outcome.reason,
            exit_code="none" if outcome.exit_code is None else outcome.exit_code,
            turns=outcome.turns,
        )
        task = self.store.get_task(outcome.task_id)
        decision = decide(outcome.reason, task.attempts, self.cfg.max_attempts, self.cfg.max_turns)
        released = self.store.release_task(
            outcome.task_id, decision.state, progress_note(outcome), decision.reason
        )
        if released:
            logger.info(
                "[task] task %s is now %s%s",
                outcome.task_id,
                decision.state,
                f": {decision.reason}" if decision.reason else "",
            )
        self._activity = "between sessions"
        self._beat()
        return outcome

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            step = min(remaining, self.notifier.watchdog_every or remaining)
            self.stopping.wait(step)
            self._beat()

    def _beat(self) -> None:
        self.last_beat = time.monotonic()
        if self.scheduler is not None:
            self.scheduler.tick(time.time())
        self.notifier.watchdog()
        self.notifier.status(self._status())

    def _status(self) -> str:
        try:
            return status_line(self.store.snapshot(), self.cfg.daily_sessions, self._activity)
        except StoreError as exc:
            return f"store unreadable: {exc}"


def _read_available(fd: int) -> bytes | None:
    """Read what the pipe holds; None at end of file."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks) if chunks else None
        chunks.append(chunk)


def _kill(child: subprocess.Popen[bytes]) -> None:
    """Kill the session child and everything it started (its tools run in its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `jada-agent run`."""
    parser = subparsers.add_parser("run", help="run the orchestrator daemon")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM."""
    cfg = cli.load_config(args)
    log.setup()
    try:
        store = Store(cfg.store_path)
    except StoreError as exc:
        print(f"jada-agent: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    metrics = Metrics(cfg.max_turns, cfg.daily_sessions, snapshot=store.snapshot, models=(cfg.model,))
    daemon = Daemon(cfg, store, metrics, scheduler=JobScheduler(cfg, store, metrics))
    host, port = cfg.listen_host_port
    try:
        server = StatusServer(
            host,
            port,
            metrics=metrics.exposition,
            health=daemon.health,
            report=lambda: gather_config(cfg, store),
        )
    except OSError as exc:
        print(
            f"jada-agent: {cfg.path}: orchestrator.listen_address {cfg.listen_address}: cannot listen "
            f"({exc.strerror}); pick a free port",
            file=sys.stderr,
        )
        return cli.EXIT_USAGE
    daemon.install_signal_handlers()
    server.start()
    bound_host, bound_port = server.address
    url = f"http://{bound_host}:{bound_port}"
    log.event(
        f"[daemon] serving {url}/metrics, {url}/healthz and the status page at {url}/",
        event="daemon_listen",
        listen_address=f"{bound_host}:{bound_port}",
    )
    try:
        return daemon.run()
    finally:
        server.stop()
        store.close()
